package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"ztproxy/certs"
	"ztproxy/store"
)

// ACME is tls.acme: the server certificate is obtained and renewed with
// ACME (Let's Encrypt or a private ACME CA) instead of tls.cert_file and
// tls.key_file, and kept in the store so that every replica serves it.
type ACME struct {
	// Domains are the exact host names to obtain certificates for (no
	// wildcards: HTTP-01 and TLS-ALPN-01 cannot prove them).
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact for expiry notices; optional.
	Email string `yaml:"email"`
	// DirectoryURL is the ACME directory; empty means Let's Encrypt's.
	DirectoryURL string `yaml:"directory_url"`
	// DirectoryCAFile, when set, is the PEM bundle of the only roots
	// trusted for DirectoryURL's HTTPS (a private ACME CA).
	DirectoryCAFile string `yaml:"directory_ca_file"`
	// AcceptTOS must be true: it accepts the CA's terms of service.
	AcceptTOS bool `yaml:"accept_tos"`
	// HTTPListen, when set, serves HTTP-01 challenges (and redirects every
	// other request to https) on this address; port 80 must reach it.
	HTTPListen string `yaml:"http_listen"`
	// RenewBefore is how long before expiry certificates are renewed;
	// 0 means 720h.
	RenewBefore time.Duration `yaml:"renew_before"`
}

// maxACMEDomains is Let's Encrypt's limit of names per certificate order,
// and a bound on handshakes that may start an order.
const maxACMEDomains = 100

// checkACME validates tls.acme; checkTLS calls it when the block is set.
func (f *File) checkACME(c *collector) {
	a := f.TLS.ACME
	if f.InsecurePlaintext {
		c.add("tls.acme", "cannot be combined with insecure_plaintext")
	}
	if f.TLS.CertFile != "" || f.TLS.KeyFile != "" {
		c.add("tls.acme", "set tls.acme or tls.cert_file and tls.key_file, not both")
	}
	f.checkACMEDomains(c, a.Domains)
	if !a.AcceptTOS {
		c.add("tls.acme.accept_tos", "must be true: ztproxy accepts the ACME CA's terms of service on your behalf")
	}
	if a.Email != "" && (strings.Count(a.Email, "@") != 1 || strings.ContainsAny(a.Email, " \t\r\n,<>")) {
		c.add("tls.acme.email", "%q is not an email address", a.Email)
	}
	if a.DirectoryURL != "" {
		if _, msg := checkURL(a.DirectoryURL, urlRules{secure: true}); msg != "" {
			c.add("tls.acme.directory_url", "%s", msg)
		}
	}
	f.checkFile(c, "tls.acme.directory_ca_file", &a.DirectoryCAFile)
	if a.HTTPListen != "" {
		if _, port, ok := checkHostPort(c, "tls.acme.http_listen", a.HTTPListen); ok && (a.HTTPListen == f.Listen || a.HTTPListen == f.AdminListen || port == "0") {
			c.add("tls.acme.http_listen", "must be an address of its own (port 80, or what the load balancer maps to it), not %q", a.HTTPListen)
		}
	}
	switch {
	case a.RenewBefore == 0:
		a.RenewBefore = 720 * time.Hour
	case a.RenewBefore < time.Hour || a.RenewBefore > 2160*time.Hour:
		c.add("tls.acme.renew_before", "must be between 1h and 2160h, not %v", a.RenewBefore)
	}
}

func (f *File) checkACMEDomains(c *collector, domains []string) {
	if len(domains) == 0 || len(domains) > maxACMEDomains {
		c.add("tls.acme.domains", "list 1 to %d host names, not %d", maxACMEDomains, len(domains))
	}
	seen := map[string]bool{}
	for i, d := range domains {
		path := indexPath("tls.acme.domains", i)
		switch {
		case d != strings.ToLower(d) || !isDNSName(d):
			c.add(path, "%q is not a lower-case host name", d)
		case strings.HasPrefix(d, "*."):
			c.add(path, "%q: wildcards need DNS-01, which ztproxy does not do", d)
		case seen[d]:
			c.add(path, "%q is listed twice", d)
		}
		seen[d] = true
	}
}

// isDNSName reports whether s is a host name of letters, digits and
// hyphens in dot-separated labels with at least two labels, and not an IP
// address.
func isDNSName(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(strings.TrimPrefix(s, "*."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// buildACME fills rt.Certs.ACME from tls.acme; the certificate cache
// (the store) is added by the caller once the store is open
// (ACMECertificateCache).
func (f *File) buildACME(c *collector, rt *Runtime) {
	a := f.TLS.ACME
	if a == nil || rt.Certs == nil {
		return
	}
	// Only plain values: a reload compares rt.Certs to tell whether the
	// TLS settings changed.
	rt.Certs.ACME = &certs.ACMEConfig{Domains: a.Domains, Email: a.Email, DirectoryURL: a.DirectoryURL,
		DirectoryCAFile: a.DirectoryCAFile, RenewBefore: a.RenewBefore, HTTP01: a.HTTPListen != ""}
}

// ACMECertificateCache returns the store's certificate cache for
// tls.acme.
func ACMECertificateCache(st store.Store) (certs.CertificateStore, error) {
	cache, ok := st.(store.CertificateCache)
	if !ok {
		return nil, fmt.Errorf("the %T store keeps no certificates", st)
	}
	return acmeStoreCache{cache}, nil
}

// acmeStoreCache is the store's certificate cache in the certs package's
// terms: a miss is certs.ErrNotCached.
type acmeStoreCache struct{ store.CertificateCache }

func (c acmeStoreCache) GetCertificateData(ctx context.Context, key string) ([]byte, error) {
	data, err := c.CertificateCache.GetCertificateData(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", certs.ErrNotCached, err)
	}
	return data, err
}

// The check-config stand-in answers the certificate cache too.
var _ store.CertificateCache = unopenedStore{}

func (unopenedStore) GetCertificateData(context.Context, string) ([]byte, error) {
	return nil, errUnopened
}
func (unopenedStore) PutCertificateData(context.Context, string, []byte) error { return errUnopened }
func (unopenedStore) DeleteCertificateData(context.Context, string) error      { return errUnopened }
