package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ztproxy/certs"
)

// cmdDevice is the device side of device trust: enrol this machine
// (browser sign-in with a fresh second factor, a key generated here),
// report its posture and renew its certificate over mTLS, export the
// certificate for a browser or keychain.
func cmdDevice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := verbOf("device", args, stdout, "enroll", "report", "renew", "export", "status")
	if err != nil {
		return err
	}
	switch verb {
	case "enroll":
		return deviceEnroll(ctx, args, stdout, stderr)
	case "report":
		return deviceReport(ctx, args, stdout, stderr)
	case "renew":
		return deviceRenew(ctx, args, stdout, stderr)
	case "export":
		return deviceExport(args, stdout, stderr)
	}
	return deviceStatus(args, stdout, stderr)
}

// deviceState is what `device enroll` leaves in the device directory,
// next to device.pem and device-key.pem (0600).
type deviceState struct {
	Proxy    string `json:"proxy"`
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
	// CACert is the file that verifies the proxy's server certificate;
	// empty for the system roots.
	CACert string `json:"cacert,omitempty"`
}

// deviceFiles are the paths of a device directory.
type deviceFiles struct{ dir, state, cert, key string }

func deviceFilesIn(dir string) (deviceFiles, error) {
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return deviceFiles{}, fmt.Errorf("no --dir and no user config directory: %w", err)
		}
		dir = filepath.Join(base, "ztproxy", "device")
	}
	return deviceFiles{dir: dir, state: filepath.Join(dir, "device.json"), cert: filepath.Join(dir, "device.pem"), key: filepath.Join(dir, "device-key.pem")}, nil
}

func deviceEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("device enroll", stdout, stderr)
	proxyURL := fs.String("proxy", "", "the proxy's external URL, e.g. https://access.example.com")
	host, _ := os.Hostname()
	name := fs.String("name", host, "a name for this device, shown on your devices page")
	cacert := fs.String("cacert", "", "PEM file that verifies the proxy's certificate (default: system roots)")
	dir := fs.String("dir", "", "device directory (default: <user config dir>/ztproxy/device)")
	noBrowser := fs.Bool("no-browser", false, "print the sign-in URL instead of opening a browser")
	force := fs.Bool("force", false, "enrol again, replacing this directory's device")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser sign-in")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *proxyURL == "" {
		return usageError("--proxy is required")
	}
	files, err := deviceFilesIn(*dir)
	if err != nil {
		return err
	}
	if st, err := loadDeviceState(files); err == nil && !*force {
		return fmt.Errorf("this directory already holds device %s (%s); use --force to enrol again", st.DeviceID, st.Name)
	}
	if *cacert != "" {
		if *cacert, err = filepath.Abs(*cacert); err != nil {
			return err
		}
	}
	state := deviceState{Proxy: strings.TrimSuffix(*proxyURL, "/"), Name: *name, CACert: *cacert}
	key, csr, err := newDeviceKey(*name)
	if err != nil {
		return err
	}
	form, err := loopbackHandOff(ctx, handOff{
		what: fmt.Sprintf("enrol this device as %q", *name), noBrowser: *noBrowser, timeout: *timeout, stderr: stderr,
		target: func(port int, st string) string {
			return state.Proxy + "/.ztp/devices/enroll?" + url.Values{
				"csr": {base64.RawURLEncoding.EncodeToString(csr)}, "name": {*name}, "port": {fmt.Sprint(port)}, "state": {st},
			}.Encode()
		},
		check: func(form url.Values) error { _, err := issuedFor(form.Get("certificate"), key); return err },
		done:  "device enrolled",
	})
	if err != nil {
		return err
	}
	state.DeviceID = form.Get("device_id")
	if err := saveDevice(files, state, key, form.Get("certificate")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled device %s (%s); certificate %s, key %s\n", state.DeviceID, state.Name, files.cert, files.key)
	// The first posture report, over mTLS with the new certificate.
	return sendReport(ctx, files, state, reportOptions{}, stdout)
}

// newDeviceKey generates the device's P-256 key here (it never leaves the
// machine) and a certificate request for it.
func newDeviceKey(name string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}

// issuedFor parses the PEM certificate the proxy issued and checks that
// it is for key.
func issuedFor(certPEM string, key crypto.Signer) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no certificate in the answer")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("the certificate is not for this device's key")
	}
	return cert, nil
}

// saveDevice writes the key (0600), the certificate and the state, each
// atomically, key first so a certificate never lacks its key.
func saveDevice(files deviceFiles, state deviceState, key *ecdsa.PrivateKey, certPEM string) error {
	if err := os.MkdirAll(files.dir, 0o700); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(files.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(files.cert, []byte(certPEM), 0o644); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(state, "", "  ")
	return certs.WriteFileAtomic(files.state, append(data, '\n'), 0o600)
}

// loadDevice reads an enrolled device's directory: its paths, state and
// current certificate.
func loadDevice(dir string) (deviceFiles, deviceState, *x509.Certificate, error) {
	files, err := deviceFilesIn(dir)
	if err != nil {
		return files, deviceState{}, nil, err
	}
	st, err := loadDeviceState(files)
	if err != nil {
		return files, st, nil, err
	}
	cert, err := loadDeviceCert(files)
	return files, st, cert, err
}

func loadDeviceState(files deviceFiles) (deviceState, error) {
	var st deviceState
	data, err := os.ReadFile(files.state)
	if err != nil {
		return st, fmt.Errorf("no enrolled device in %s (run ztproxy device enroll): %w", files.dir, err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Proxy == "" || st.DeviceID == "" {
		return st, fmt.Errorf("%s: not a device state file", files.state)
	}
	return st, nil
}

func deviceStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("device status", stdout, stderr)
	dir := fs.String("dir", "", "device directory")
	if err := fs.parse(args); err != nil {
		return err
	}
	_, st, cert, err := loadDevice(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "device %s (%s) at %s\ncertificate valid until %s (%s left)\n", st.DeviceID, st.Name, st.Proxy,
		cert.NotAfter.UTC().Format(time.RFC3339), time.Until(cert.NotAfter).Round(time.Minute))
	return nil
}

func loadDeviceCert(files deviceFiles) (*x509.Certificate, error) {
	data, err := os.ReadFile(files.cert)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", files.cert)
	}
	return x509.ParseCertificate(block.Bytes)
}
