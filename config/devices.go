package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/certs"
	"ztproxy/devices"
	"ztproxy/identity"
)

// Devices configures device trust: the device CA, enrolment and the
// device inventory (see docs/devices.md).
type Devices struct {
	// Enabled turns device enrolment and the inventory on.
	Enabled bool `yaml:"enabled"`
	// CACertFile and CAKeyFile are the device CA ("ztproxy certs
	// device-ca"); the CA is also trusted for client certificates.
	CACertFile string `yaml:"ca_cert_file"`
	CAKeyFile  string `yaml:"ca_key_file"`
	// TrustDomain is the SPIFFE trust domain of device ids
	// (spiffe://<trust_domain>/device/<id>); default: external_url's host.
	TrustDomain string `yaml:"trust_domain"`
	// CertLifetime is the validity of device certificates (1h to 2160h).
	CertLifetime time.Duration `yaml:"cert_lifetime"`
	// PostureMaxAge drops posture facts older than this (unknown, stale).
	PostureMaxAge time.Duration `yaml:"posture_max_age"`
	// CacheTTL bounds how late a replica sees a device revoked elsewhere.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// MaxPerUser bounds a user's active devices.
	MaxPerUser int `yaml:"max_per_user"`
	// Enrollment says what proof enrolment needs.
	Enrollment DeviceEnrollment `yaml:"enrollment"`
	// Vendors are the issuers of signed posture assertions accepted in
	// device reports.
	Vendors []DeviceVendor `yaml:"vendors"`
}

// DeviceEnrollment is the proof a user needs to enrol a device.
type DeviceEnrollment struct {
	// Require is "mfa" (a second factor at the IdP or a security key) or
	// "webauthn" (a security key verified by ztproxy).
	Require string `yaml:"require"`
	// MaxAge is how recent that proof must be (1m to 1h).
	MaxAge time.Duration `yaml:"max_age"`
}

// DeviceVendor is one issuer of signed posture assertions.
type DeviceVendor struct {
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
	// JWKSURL or JWKSFile (exactly one) hold the vendor's keys.
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
	Audience string `yaml:"audience"`
	// DeviceClaim binds an assertion to the device: its value must be the
	// device id or SPIFFE id.
	DeviceClaim string `yaml:"device_claim"`
	// ScoreClaim is the dotted path of a 0–100 score.
	ScoreClaim string `yaml:"score_claim"`
	// FactClaims map posture facts to dotted claim paths.
	FactClaims map[string]string `yaml:"fact_claims"`
}

// DefaultDevices returns the defaults of the devices block.
func DefaultDevices() Devices {
	return Devices{
		CertLifetime: devices.DefaultCertLifetime, PostureMaxAge: devices.DefaultPostureMaxAge,
		CacheTTL: devices.DefaultCacheTTL, MaxPerUser: devices.DefaultMaxPerUser,
		Enrollment: DeviceEnrollment{Require: devices.RequireMFA, MaxAge: devices.DefaultEnrollMaxAge},
	}
}

func (v *DeviceVendor) setDefaults() { *v = DeviceVendor{DeviceClaim: "sub"} }

// checkDevices checks the devices block when it is enabled.
func (f *File) checkDevices(c *collector) {
	d := &f.Devices
	if !d.Enabled {
		return
	}
	if d.CACertFile == "" {
		c.add("devices.ca_cert_file", "required (create one with `ztproxy certs device-ca`)")
	}
	if d.CAKeyFile == "" {
		c.add("devices.ca_key_file", "required (create one with `ztproxy certs device-ca`)")
	}
	f.checkFile(c, "devices.ca_cert_file", &d.CACertFile)
	if f.checkFile(c, "devices.ca_key_file", &d.CAKeyFile) {
		warnWorldReadableFile(c, "devices.ca_key_file", d.CAKeyFile)
	}
	if f.InsecurePlaintext || (f.TLS.ClientAuth != ClientAuthRequest && f.TLS.ClientAuth != ClientAuthRequire) {
		c.add("devices.enabled", "devices present certificates: set tls.client_auth to request (or require) on a TLS listener")
	}
	if len(f.Session.Secrets) == 0 && f.Session.SecretsFile == "" {
		c.add("devices.enabled", "enrolment signs users in with the browser: configure session.secrets and an idp with client_id")
	}
	switch {
	case f.DeviceTrustDomain() != "":
	case d.TrustDomain != "":
		c.add("devices.trust_domain", "%q must hold only a-z, 0-9, '.', '-' and '_'", d.TrustDomain)
	default:
		c.add("devices.trust_domain", "required: external_url's host is not a SPIFFE trust domain (a-z, 0-9, '.', '-', '_')")
	}
	checkDuration(c, "devices.cert_lifetime", d.CertLifetime, time.Hour, 90*24*time.Hour)
	checkDuration(c, "devices.posture_max_age", d.PostureMaxAge, time.Second, 90*24*time.Hour)
	checkDuration(c, "devices.cache_ttl", d.CacheTTL, time.Second, time.Hour)
	checkDuration(c, "devices.enrollment.max_age", d.Enrollment.MaxAge, time.Minute, time.Hour)
	if d.MaxPerUser < 1 || d.MaxPerUser > 1000 {
		c.add("devices.max_per_user", "must be between 1 and 1000")
	}
	switch d.Enrollment.Require {
	case devices.RequireMFA:
	case devices.RequireWebAuthn:
		if f.WebAuthnRPID() == "" {
			c.add("devices.enrollment.require", "webauthn needs webauthn.enabled and an external_url with a domain name")
		}
	default:
		c.add("devices.enrollment.require", "must be mfa or webauthn, not %q", d.Enrollment.Require)
	}
	f.checkDeviceVendors(c)
}

func (f *File) checkDeviceVendors(c *collector) {
	names, issuers := map[string]bool{}, map[string]bool{}
	for i := range f.Devices.Vendors {
		path := indexPath("devices.vendors", i)
		v := &f.Devices.Vendors[i]
		if v.Name == "" || strings.ContainsAny(v.Name, " \t:") || names[v.Name] {
			c.add(path+".name", "must be a unique word")
		}
		names[v.Name] = true
		if v.Issuer == "" || issuers[v.Issuer] {
			c.add(path+".issuer", "must be set and unique")
		}
		issuers[v.Issuer] = true
		switch {
		case (v.JWKSURL == "") == (v.JWKSFile == ""):
			c.add(path, "set exactly one of jwks_url and jwks_file")
		case v.JWKSURL != "":
			checkOptionalURL(c, path+".jwks_url", v.JWKSURL)
		default:
			f.checkFile(c, path+".jwks_file", &v.JWKSFile)
		}
		for fact := range v.FactClaims {
			if _, ok := identity.KindOf(fact); !ok || fact == identity.FactScore {
				c.add(path+".fact_claims", "%q is not a posture fact (os, os_version, kernel, disk_encrypted, firewall, screen_lock)", fact)
			}
		}
	}
}

func checkDuration(c *collector, path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		c.add(path, "must be between %s and %s", lo, hi)
	}
}

// DeviceTrustDomain is devices.trust_domain, or external_url's host in
// lower case when that is a valid trust domain; "" otherwise.
func (f *File) DeviceTrustDomain() string {
	td := f.Devices.TrustDomain
	if td == "" {
		if u, err := url.Parse(f.ExternalURL); err == nil {
			td = strings.ToLower(u.Hostname())
		}
	}
	for i := 0; i < len(td); i++ {
		if ch := td[i]; (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '.' && ch != '-' && ch != '_' {
			return ""
		}
	}
	return td
}

// DevicesConfig converts the devices block: the CA is loaded and the
// vendors' key sets built (JWKS files read now, URLs fetched on first
// use, reporting to logger and events). The caller sets Store and the
// hooks. nil when disabled.
func (f *File) DevicesConfig(logger *slog.Logger, events authn.KeySetEvents) (*devices.Config, error) {
	d := f.Devices
	if !d.Enabled {
		return nil, nil
	}
	ca, key, err := certs.LoadCA(d.CACertFile, d.CAKeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &devices.Config{
		CACert: ca, CAKey: key, TrustDomain: f.DeviceTrustDomain(), CertLifetime: d.CertLifetime,
		PostureMaxAge: d.PostureMaxAge, CacheTTL: d.CacheTTL, MaxPerUser: d.MaxPerUser,
		Enrollment: devices.Enrollment{Require: d.Enrollment.Require, MaxAge: d.Enrollment.MaxAge}, Logger: logger,
	}
	var errs []error
	for i, v := range d.Vendors {
		source := v.JWKSURL
		if source == "" {
			source = v.JWKSFile
		}
		keys, err := authn.KeySetFromSource(source, authn.KeySetConfig{
			Name: fmt.Sprintf("devices.vendors[%d]", i), Logger: logger, Events: events,
			Refresh: authn.KeyRefresh{Interval: authn.DefaultJWKSRefreshInterval, MinRefetchInterval: authn.DefaultJWKSMinRefetchInterval, MaxStale: authn.DefaultJWKSMaxStale},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("devices.vendors[%d]: %s: %w", i, source, err))
			continue
		}
		cfg.Vendors = append(cfg.Vendors, devices.Vendor{
			Name: v.Name, Issuer: v.Issuer, Audience: v.Audience, DeviceClaim: v.DeviceClaim,
			ScoreClaim: v.ScoreClaim, FactClaims: v.FactClaims, Keys: keys,
		})
	}
	return cfg, errors.Join(errs...)
}

// buildDevices sets rt.Devices (built here so that check-config reports an
// unreadable CA or JWKS file; serve builds it again with its logger and
// metrics) and trusts the device CA for client certificates.
func (f *File) buildDevices(c *collector, rt *Runtime) {
	if f.Devices.Enabled && rt.Certs != nil {
		rt.Certs.DeviceCAFile = f.Devices.CACertFile
	}
	dc, err := f.DevicesConfig(slog.New(slog.DiscardHandler), authn.KeySetEvents{})
	if err != nil {
		addErr(c, "devices", err)
	}
	rt.Devices = dc
}
