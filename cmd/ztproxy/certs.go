package main

import (
	"fmt"
	"io"
	"strings"

	"ztproxy/certs"
)

func cmdCerts(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "device-ca" {
		return cmdDeviceCA(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "dev" {
		return usageError("usage: ztproxy certs dev --out DIR [--hosts h1,h2] [--device-spiffe-id ID] [--force]\n" +
			"       ztproxy certs device-ca --out DIR [--org NAME] [--validity DURATION] [--force]")
	}
	fs := newFlags("certs dev", stderr)
	out := fs.String("out", "", "directory to write the certificates to")
	hosts := fs.String("hosts", "", "comma-separated server names (default localhost,127.0.0.1,::1)")
	spiffe := fs.String("device-spiffe-id", "", "SPIFFE id of the device certificate")
	force := fs.Bool("force", false, "overwrite an existing CA")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error())
	}
	if *out == "" {
		return usageError("--out is required")
	}
	opts := certs.DevOptions{Out: *out, DeviceSPIFFEID: *spiffe, Force: *force}
	if *hosts != "" {
		opts.Hosts = strings.Split(*hosts, ",")
	}
	files, err := certs.WriteDev(opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Development certificates written (NOT for production):\n")
	fmt.Fprintf(stdout, "  CA:          %s (key %s)\n", files.CA, files.CAKey)
	fmt.Fprintf(stdout, "  server:      %s (key %s)\n", files.ServerCert, files.ServerKey)
	fmt.Fprintf(stdout, "  device:      %s (key %s)\n", files.ClientCert, files.ClientKey)
	fmt.Fprintf(stdout, "Try: curl --cacert %s --cert %s --key %s https://localhost:8443/\n", files.CA, files.ClientCert, files.ClientKey)
	return nil
}

// cmdDeviceCA writes the device CA (devices.ca_cert_file, ca_key_file).
func cmdDeviceCA(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("certs device-ca", stderr)
	out := fs.String("out", "", "directory to write device-ca.pem and device-ca-key.pem to")
	org := fs.String("org", "", "the CA's organization (default ztproxy)")
	validity := fs.Duration("validity", 0, "the CA's lifetime (default 5 years)")
	force := fs.Bool("force", false, "replace an existing device CA (every enrolled device must enrol again)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
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
