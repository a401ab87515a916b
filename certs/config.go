// Package certs owns the proxy's TLS material: the server certificate and
// client CA bundle (loaded from PEM files and reloaded live), the
// development CA used by "ztproxy certs dev", and the device identity taken
// from a verified client certificate chain.
package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ClientAuth says whether the listener asks for a client certificate.
type ClientAuth string

// The client certificate modes. A presented certificate is always verified
// against the client CA bundle; "request" only makes presenting one optional.
const (
	ClientAuthNone    ClientAuth = "none"
	ClientAuthRequest ClientAuth = "request"
	ClientAuthRequire ClientAuth = "require"
)

// tlsClientAuth maps the mode to crypto/tls. Unknown modes map to the
// strictest setting so that a forgotten validation fails closed.
func (a ClientAuth) tlsClientAuth() tls.ClientAuthType {
	switch a {
	case ClientAuthNone:
		return tls.NoClientCert
	case ClientAuthRequest:
		return tls.VerifyClientCertIfGiven
	default:
		return tls.RequireAndVerifyClientCert
	}
}

// DefaultReloadInterval is how often Run polls the files when
// Config.ReloadInterval is zero.
const DefaultReloadInterval = 2 * time.Second

// Config configures a Manager. File names in errors are reported with the
// YAML paths of the tls section (tls.cert_file and so on).
type Config struct {
	// CertFile is the server certificate chain, leaf first, in PEM.
	CertFile string
	// KeyFile is the private key of the leaf in PEM (PKCS#8, SEC 1 or
	// PKCS#1). It may be the same file as CertFile.
	KeyFile string
	// ClientCAFile is a PEM bundle of the CAs that issue client
	// certificates. It is required when ClientAuth is not "none".
	ClientCAFile string
	// DeviceCAFile is the PEM certificate of the device CA
	// (devices.ca_cert_file): certificates it signs are accepted as
	// client certificates too. Either it or ClientCAFile is required when
	// ClientAuth is not "none".
	DeviceCAFile string
	// ClientAuth is "none" (the default when empty), "request" or "require".
	ClientAuth ClientAuth
	// ReloadInterval is how often Run checks the files for new content.
	ReloadInterval time.Duration
	// Logger receives reload events; it defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock used for expiry warnings; it defaults to time.Now.
	Now func() time.Time
	// ACME, when set, obtains the server certificate with ACME
	// (tls.acme) instead of CertFile and KeyFile, which must be empty.
	ACME *ACMEConfig
}

// CheckAndSetDefaults validates the configuration and fills in defaults. It
// does not touch the file system; New does that. Every problem found is
// reported, joined into one error.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	switch {
	case c.ACME != nil:
		if c.CertFile != "" || c.KeyFile != "" {
			errs = append(errs, errors.New("tls.acme: set tls.acme or tls.cert_file and tls.key_file, not both"))
		}
		errs = append(errs, c.ACME.check())
	default:
		if c.CertFile == "" {
			errs = append(errs, errors.New("tls.cert_file: required"))
		}
		if c.KeyFile == "" {
			errs = append(errs, errors.New("tls.key_file: required"))
		}
	}
	if c.ClientAuth == "" {
		c.ClientAuth = ClientAuthNone
	}
	switch c.ClientAuth {
	case ClientAuthNone:
	case ClientAuthRequest, ClientAuthRequire:
		if c.ClientCAFile == "" && c.DeviceCAFile == "" {
			errs = append(errs, fmt.Errorf("tls.client_ca_file: required when tls.client_auth is %q", c.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("tls.client_auth: %q is not one of none, request, require", c.ClientAuth))
	}
	switch {
	case c.ReloadInterval < 0:
		errs = append(errs, fmt.Errorf("tls.reload_interval: %v must not be negative", c.ReloadInterval))
	case c.ReloadInterval == 0:
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}
