package devices

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Store keeps the inventory, shared by every replica. store.Bolt and
// store.Dynamo implement it through config's adapter.
type Store interface {
	// CreateDevice stores a new record; ErrExists if the id is taken.
	CreateDevice(ctx context.Context, r Record) error
	// GetDevice returns ErrNotFound for an unknown id.
	GetDevice(ctx context.Context, id string) (Record, error)
	// UpdateDevice replaces the record if the stored version is still
	// r.Version (the stored version then becomes r.Version+1), else
	// fails with ErrConflict; ErrNotFound when it is gone.
	UpdateDevice(ctx context.Context, r Record) error
	// ListDevices returns the owner's devices, or every device when owner
	// is "" (operator listings and MDM imports only).
	ListDevices(ctx context.Context, owner string) ([]Record, error)
}

// Step-up requirements enrolment can ask for (the same strings as
// authn's @step_up values).
const (
	RequireMFA      = "mfa"
	RequireWebAuthn = "webauthn"
)

// Enrollment says what proof a user needs to enrol a device.
type Enrollment struct {
	// Require is RequireMFA (a second factor at the IdP, or a security
	// key verified by ztproxy) or RequireWebAuthn (a security key only).
	Require string
	// MaxAge is how recent that proof must be.
	MaxAge time.Duration
}

// Defaults.
const (
	DefaultCertLifetime  = 7 * 24 * time.Hour
	DefaultPostureMaxAge = 24 * time.Hour
	DefaultCacheTTL      = 30 * time.Second
	DefaultEnrollMaxAge  = 10 * time.Minute
	DefaultMaxPerUser    = 10
)

// Config configures an Inventory.
type Config struct {
	// CACert and CAKey sign device certificates (certs.LoadCA reads them).
	CACert *x509.Certificate
	CAKey  crypto.Signer
	// TrustDomain is the SPIFFE trust domain of device ids:
	// spiffe://<TrustDomain>/device/<id>.
	TrustDomain string
	// CertLifetime is the validity of an issued certificate (1h–90d).
	CertLifetime time.Duration
	// PostureMaxAge drops facts older than this from the posture: they
	// count as unknown, and the device as posture-stale.
	PostureMaxAge time.Duration
	// CacheTTL is how long a looked-up record is used before the store is
	// read again; it bounds how late a replica sees a revocation made
	// elsewhere.
	CacheTTL time.Duration
	// CacheSize bounds the cached records (default 100,000).
	CacheSize int
	// FetchTimeout bounds one store read on the request path (default 2s).
	FetchTimeout time.Duration
	// MaxPerUser bounds a user's active devices.
	MaxPerUser int
	Enrollment Enrollment
	// Vendors are the accepted issuers of signed posture assertions.
	Vendors []Vendor
	Store   Store
	Now     func() time.Time
	Logger  *slog.Logger
	// OnLookup, when set, is told the outcome of every per-request
	// lookup: "cached", "fetched", "error" or "foreign" (a certificate
	// ztproxy did not issue).
	OnLookup func(result string)
	// OnEvent, when set, is told of every change: "enrolled", "renewed",
	// "reported", "revoked", "managed", "imported".
	OnEvent func(event string)
	// Announce, when set, tells every replica that the device's status or
	// managed flag changed (the store's change feed), so that they drop
	// their cached record within the feed's poll interval rather than
	// CacheTTL (issue 17). Revoke, Remove and SetManaged call it; a
	// failure is logged and leaves the other replicas to CacheTTL.
	Announce func(ctx context.Context, id string) error
}

// CheckAndSetDefaults validates the configuration and fills defaults. It
// reports every problem at once and touches nothing but c.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.CACert == nil || c.CAKey == nil {
		errs = append(errs, errors.New("devices: the device CA certificate and key are required"))
	}
	if err := checkTrustDomain(c.TrustDomain); err != nil {
		errs = append(errs, fmt.Errorf("devices.trust_domain: %w", err))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("devices: a store is required"))
	}
	defaultDuration(&c.CertLifetime, DefaultCertLifetime)
	if c.CertLifetime < time.Hour || c.CertLifetime > 90*24*time.Hour {
		errs = append(errs, fmt.Errorf("devices.cert_lifetime: %v must be between 1h and 2160h (90 days)", c.CertLifetime))
	}
	defaultDuration(&c.PostureMaxAge, DefaultPostureMaxAge)
	defaultDuration(&c.CacheTTL, DefaultCacheTTL)
	defaultDuration(&c.FetchTimeout, 2*time.Second)
	defaultDuration(&c.Enrollment.MaxAge, DefaultEnrollMaxAge)
	if c.CacheSize <= 0 {
		c.CacheSize = 100_000
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = DefaultMaxPerUser
	}
	switch c.Enrollment.Require {
	case "":
		c.Enrollment.Require = RequireMFA
	case RequireMFA, RequireWebAuthn:
	default:
		errs = append(errs, fmt.Errorf("devices.enrollment.require: %q is not mfa or webauthn", c.Enrollment.Require))
	}
	seen := map[string]bool{}
	for i := range c.Vendors {
		v := &c.Vendors[i]
		if err := v.check(); err != nil {
			errs = append(errs, fmt.Errorf("devices.vendors[%d]: %w", i, err))
		}
		if seen[v.Issuer] {
			errs = append(errs, fmt.Errorf("devices.vendors[%d].issuer: %q is configured twice", i, v.Issuer))
		}
		seen[v.Issuer] = true
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
