package certs

import (
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultDeviceCAValidity is the lifetime of a device CA made by
// WriteDeviceCA when DeviceCAOptions.Validity is zero: five years. The
// device certificates it signs live days, not years.
const DefaultDeviceCAValidity = 5 * 365 * 24 * time.Hour

// DeviceCAOptions configures WriteDeviceCA.
type DeviceCAOptions struct {
	// Out is the directory the files are written to; it is created 0700.
	Out string
	// Organization is the CA subject's organization (O); the default is
	// "ztproxy".
	Organization string
	// Validity is the CA's lifetime; the default is
	// DefaultDeviceCAValidity.
	Validity time.Duration
	// Force allows replacing an existing CA in Out. Without it
	// WriteDeviceCA refuses: a new CA invalidates every enrolled device.
	Force bool
}

// DeviceCAFiles are the paths WriteDeviceCA wrote.
type DeviceCAFiles struct{ Cert, Key string }

// WriteDeviceCA creates the CA that signs enrolled devices' certificates
// (devices.ca_cert_file and devices.ca_key_file): ECDSA P-256, path
// length zero, written to Out as device-ca.pem and device-ca-key.pem
// (0600). The key signs device certificates on the proxy; keep it where
// only the proxy reads it (a secret store, a mounted secret).
func WriteDeviceCA(opts DeviceCAOptions) (DeviceCAFiles, error) {
	if opts.Out == "" {
		return DeviceCAFiles{}, errors.New("device CA: output directory is required")
	}
	if opts.Validity < 0 {
		return DeviceCAFiles{}, fmt.Errorf("device CA: validity %v must not be negative", opts.Validity)
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultDeviceCAValidity
	}
	if opts.Organization == "" {
		opts.Organization = "ztproxy"
	}
	files := DeviceCAFiles{Cert: filepath.Join(opts.Out, "device-ca.pem"), Key: filepath.Join(opts.Out, "device-ca-key.pem")}
	if _, err := os.Lstat(files.Cert); err == nil && !opts.Force {
		return DeviceCAFiles{}, fmt.Errorf("device CA: %s already exists; replacing the CA invalidates every enrolled device (use --force)", files.Cert)
	}
	if err := os.MkdirAll(opts.Out, 0o700); err != nil {
		return DeviceCAFiles{}, fmt.Errorf("device CA: %w", err)
	}
	subject := pkix.Name{CommonName: "ztproxy device CA", Organization: []string{opts.Organization}}
	ca, key, err := newCA(subject, time.Now(), opts.Validity, nil)
	if err != nil {
		return DeviceCAFiles{}, fmt.Errorf("device CA: %w", err)
	}
	// The certificate goes last: only it blocks a rerun, so a failed
	// write leaves nothing that needs --force.
	if err := writeKey(files.Key, key); err != nil {
		return DeviceCAFiles{}, fmt.Errorf("device CA: %w", err)
	}
	if err := writeCert(files.Cert, ca.Raw); err != nil {
		return DeviceCAFiles{}, fmt.Errorf("device CA: %w", err)
	}
	return files, nil
}
