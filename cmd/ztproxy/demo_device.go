//go:build !ztproxy_nodemo

package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"ztproxy/devices"
	"ztproxy/identity"
)

// demoDevice makes sure alice has an enrolled demo device with an
// encrypted disk, as `ztproxy device enroll` and `device report` would
// leave it, and returns the banner lines about it. The device of an
// earlier run is reused while it is still alice's (the demo OP's issuer,
// and so alice's id, changes with its port).
func demoDevice(ctx context.Context, inv *devices.Inventory, certDir, alice string) (string, error) {
	files := deviceFiles{dir: certDir, state: filepath.Join(certDir, "alice-device.json"),
		cert: filepath.Join(certDir, "alice-device.pem"), key: filepath.Join(certDir, "alice-device-key.pem")}
	dev, ok := demoDeviceIdentity(files)
	if known := inv.DeviceFacts(ctx, dev); !ok || known.Refused() || !known.OwnerMatches(&identity.Principal{Kind: identity.KindUser, ID: alice}) {
		key, csr, err := newDeviceKey("demo laptop")
		if err != nil {
			return "", err
		}
		// The demo enrols as alice right after a (pretend) second factor;
		// real enrolment is `ztproxy device enroll` through the browser.
		p := &identity.Principal{Kind: identity.KindUser, ID: alice, AuthKind: identity.AuthBrowser, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()}
		issued, err := inv.Enroll(ctx, p, "demo laptop", csr)
		if err != nil {
			return "", fmt.Errorf("demo device: %w", err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Certificate})
		if err := saveDevice(files, deviceState{Proxy: "demo", DeviceID: issued.Record.ID, Name: "demo laptop"}, key, string(certPEM)); err != nil {
			return "", err
		}
		if dev, ok = demoDeviceIdentity(files); !ok {
			return "", fmt.Errorf("demo device: %s unreadable", files.cert)
		}
	}
	if _, err := inv.Report(ctx, dev, []byte(`{"facts":{"os":"demo","disk_encrypted":true,"firewall":true,"screen_lock":true}}`)); err != nil {
		return "", fmt.Errorf("demo device: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		return "", err
	}
	const password = "ztproxy-demo"
	p12, err := pkcs12.Modern.Encode(pair.PrivateKey, pair.Leaf, nil, password)
	if err != nil {
		return "", err
	}
	p12File := filepath.Join(certDir, "alice-device.p12")
	if err := os.WriteFile(p12File, p12, 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("/laptop admits only alice's enrolled demo device (disk encrypted): import %s\n"+
		"(password %s) into the browser, sign in as alice, open /laptop and see /.ztp/devices.\n\n", p12File, password), nil
}

// demoDeviceIdentity is the device the listener would see for the demo
// device's certificate; false when there is none yet.
func demoDeviceIdentity(files deviceFiles) (identity.Device, bool) {
	cert, err := loadDeviceCert(files)
	if err != nil || len(cert.URIs) != 1 {
		return identity.Device{}, false
	}
	sum := sha256.Sum256(cert.Raw)
	return identity.Device{Present: true, ID: cert.URIs[0].String(), SPIFFEID: cert.URIs[0].String(), Fingerprint: hex.EncodeToString(sum[:]), NotAfter: cert.NotAfter}, true
}
