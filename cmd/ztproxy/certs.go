package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"

	"ztproxy/certs"
)

func cmdCerts(args []string, stdout, stderr io.Writer) error {
	verb, args, err := verbOf("certs", args, stdout, "dev", "trust", "device-ca")
	if err != nil {
		return err
	}
	switch verb {
	case "trust":
		return cmdCertsTrust(args, stdout, stderr)
	case "device-ca":
		return cmdDeviceCA(args, stdout, stderr)
	}
	fs := newFlags("certs dev", stdout, stderr)
	out := fs.String("out", "", "directory to write the certificates to")
	hosts := fs.String("hosts", "", "comma-separated server names (default localhost,127.0.0.1,::1)")
	spiffe := fs.String("device-spiffe-id", "", "SPIFFE id of the device certificate")
	force := fs.Bool("force", false, "replace an existing CA (every certificate it issued stops working)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usageError("--out is required")
	}
	opts := certs.DevOptions{Out: *out, DeviceSPIFFEID: *spiffe, Force: *force}
	if *hosts != "" {
		opts.Hosts = strings.Split(*hosts, ",")
	}
	files, err := certs.WriteDev(opts)
	if errors.Is(err, certs.ErrDevCAExists) {
		// Issue 15.6: name the flag, not the Go field.
		return fmt.Errorf("%s already holds a development CA; keep using it, or run again with --force to replace it (every certificate it issued, and every browser that trusts it, must then be updated)", *out)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Development certificates written (NOT for production; the CA only signs for %s):
  CA:      %s (key %s)
  server:  %s (key %s)
  device:  %s (key %s)

config.example.yaml uses them from dev-certs/. With "ztproxy serve --config config.example.yaml" and an
upstream on 127.0.0.1:8080 (ztproxy demo app) running, try:
  curl --cacert %s https://localhost:8443/status
  curl --cacert %s --cert %s --key %s https://localhost:8443/devices   # the device certificate (mTLS)
Browsers: "ztproxy certs trust --ca %s" prints how to trust the CA on this system.
`, hostList(opts.Hosts), files.CA, files.CAKey, files.ServerCert, files.ServerKey, files.ClientCert, files.ClientKey,
		files.CA, files.CA, files.ClientCert, files.ClientKey, files.CA)
	return nil
}

func hostList(hosts []string) string {
	if len(hosts) == 0 {
		hosts = certs.DefaultDevHosts
	}
	return strings.Join(hosts, ", ")
}

// cmdCertsTrust prints the commands that make this system's browsers and
// tools trust a development CA, and how to undo it. It changes nothing
// itself: trusting a CA is the user's decision.
func cmdCertsTrust(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("certs trust", stdout, stderr)
	ca := fs.String("ca", "", "the CA certificate (PEM), e.g. dev-certs/ca.pem")
	goos := fs.String("os", runtime.GOOS, "print the commands for this system: linux, darwin or windows")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *ca == "" {
		return usageError("--ca is required")
	}
	abs, err := filepath.Abs(*ca)
	if err != nil {
		return err
	}
	text, ok := trustInstructions(*goos, abs)
	if !ok {
		return usageError(fmt.Sprintf("--os: no instructions for %q; use linux, darwin or windows", *goos))
	}
	fmt.Fprint(stdout, text)
	return nil
}

// devCAName is the common name of the CA certs.WriteDev creates, which the
// removal commands select it by.
const devCAName = "ztproxy development CA"

// trustInstructions are the commands for goos, with the CA at path.
func trustInstructions(goos, path string) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "To trust %s (%q) on %s:\n\n", path, devCAName, goos)
	switch goos {
	case "linux":
		fmt.Fprintf(&b, `Chromium, Chrome, Edge (NSS, per user; certutil is in libnss3-tools / nss-tools):
  certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n %q -i %q
Firefox keeps its own store: Settings > Privacy & Security > Certificates > View Certificates >
  Authorities > Import, choose the file and tick "Trust this CA to identify websites".
curl and other tools (system store, Debian/Ubuntu):
  sudo cp %q /usr/local/share/ca-certificates/ztproxy-dev-ca.crt && sudo update-ca-certificates
  (Fedora/RHEL: sudo trust anchor %q)

To undo:
  certutil -d sql:$HOME/.pki/nssdb -D -n %q
  sudo rm /usr/local/share/ca-certificates/ztproxy-dev-ca.crt && sudo update-ca-certificates --fresh
`, devCAName, path, path, path, devCAName)
	case "darwin":
		fmt.Fprintf(&b, `Safari, Chrome, Edge and curl (login keychain of this user):
  security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db %q
Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import.

To undo:
  security delete-certificate -c %q ~/Library/Keychains/login.keychain-db
`, path, devCAName)
	case "windows":
		fmt.Fprintf(&b, `Edge, Chrome and curl (certificate store of this user, in cmd or PowerShell):
  certutil -user -addstore Root %q
Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import.

To undo:
  certutil -user -delstore Root %q
`, path, devCAName)
	default:
		return "", false
	}
	b.WriteString(`
The CA can only vouch for the host names its server certificate was made for (a name constraint), but
anyone who reads its key file can issue certificates for them: remove the CA when you are done.
Restart the browser after a change.
`)
	return b.String(), true
}

// cmdDeviceCA writes the device CA (devices.ca_cert_file, ca_key_file).
func cmdDeviceCA(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("certs device-ca", stdout, stderr)
	out := fs.String("out", "", "directory to write device-ca.pem and device-ca-key.pem to")
	org := fs.String("org", "", "the CA's organization (default ztproxy)")
	validity := fs.Duration("validity", 0, "the CA's lifetime (default 5 years)")
	force := fs.Bool("force", false, "replace an existing device CA (every enrolled device must enrol again)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usageError("--out is required")
	}
	files, err := certs.WriteDeviceCA(certs.DeviceCAOptions{Out: *out, Organization: *org, Validity: *validity, Force: *force})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Device CA written:\n  certificate: %s\n  key:         %s (keep it where only the proxy reads it)\n", files.Cert, files.Key)
	fmt.Fprintf(stdout, "Configure:\n  devices:\n    enabled: true\n    ca_cert_file: %s\n    ca_key_file: %s\n", files.Cert, files.Key)
	return nil
}
