package config

import (
	"net"
	"net/url"
	"strings"
	"time"
)

// checkWebAuthn checks the security key settings against external_url.
func (f *File) checkWebAuthn(c *collector) {
	w := &f.WebAuthn
	if !w.Enabled {
		return
	}
	if w.EnrollMaxAge < 30*time.Second || w.EnrollMaxAge > time.Hour {
		c.add("webauthn.enroll_max_age", "must be between 30s and 1h")
	}
	if len(w.RPName) > 64 {
		c.add("webauthn.rp_name", "must be at most 64 characters")
	}
	ext, err := url.Parse(f.ExternalURL)
	if err != nil || ext.Hostname() == "" {
		return // reported by checkExternalURL
	}
	host := strings.ToLower(ext.Hostname())
	if w.RPID == "" {
		return // defaults to the host; off for an IP address (WebAuthnRPID)
	}
	rp := strings.ToLower(w.RPID)
	switch {
	case net.ParseIP(rp) != nil || strings.ContainsAny(rp, ":/ "):
		c.add("webauthn.rp_id", "%q must be a domain name (no scheme, port or IP address)", w.RPID)
	case net.ParseIP(host) != nil:
		c.add("webauthn.rp_id", "external_url %q is an IP address; browsers allow WebAuthn only on a domain name", f.ExternalURL)
	case host != rp && !strings.HasSuffix(host, "."+rp):
		c.add("webauthn.rp_id", "%q must be external_url's host %q or a parent domain of it", w.RPID, host)
	}
}

// WebAuthnRPID is the relying party id in effect, or "" when WebAuthn is
// off: disabled, or defaulted on an external_url with an IP address.
func (f *File) WebAuthnRPID() string {
	if !f.WebAuthn.Enabled {
		return ""
	}
	if f.WebAuthn.RPID != "" {
		return strings.ToLower(f.WebAuthn.RPID)
	}
	ext, err := url.Parse(f.ExternalURL)
	if err != nil || net.ParseIP(ext.Hostname()) != nil {
		return ""
	}
	return strings.ToLower(ext.Hostname())
}
