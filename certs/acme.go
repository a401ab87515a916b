package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEConfig configures server certificates obtained with ACME (tls.acme)
// instead of files: TLS-ALPN-01 on the TLS listener always, HTTP-01 when
// the caller serves HTTPHandler on port 80.
type ACMEConfig struct {
	// Domains are the exact host names certificates are obtained for;
	// handshakes for any other name are refused before an order is made.
	Domains []string
	// Email is the ACME account's contact; may be empty.
	Email string
	// DirectoryURL is the ACME directory; empty means Let's Encrypt.
	DirectoryURL string
	// DirectoryCAFile, when set, is a PEM bundle of the only roots trusted
	// for the ACME server's HTTPS (a private ACME server); empty means the
	// system roots.
	DirectoryCAFile string
	// RenewBefore is how long before expiry a certificate is renewed;
	// zero means autocert's 30 days.
	RenewBefore time.Duration
	// Cache keeps the account key and the certificates where every replica
	// finds them (the configured store), so one replica orders and the
	// others serve the same certificate.
	Cache CertificateStore
	// HTTP01 offers HTTP-01 challenges besides TLS-ALPN-01: the caller
	// serves HTTPHandler where port 80 reaches it (tls.acme.http_listen).
	HTTP01 bool
}

// ErrNotCached is what a CertificateStore returns for an absent entry.
var ErrNotCached = errors.New("certs: not in the certificate cache")

// CertificateStore is the store's certificate cache, as the ACME manager
// needs it (store.CertificateCache); a miss is ErrNotCached.
type CertificateStore interface {
	GetCertificateData(ctx context.Context, key string) ([]byte, error)
	PutCertificateData(ctx context.Context, key string, data []byte) error
	DeleteCertificateData(ctx context.Context, key string) error
}

// ACMEALPNProto is the ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
// A connection that negotiated it carries no HTTP: the listener closes it
// after the handshake.
const ACMEALPNProto = acme.ALPNProto

func (c *ACMEConfig) check() error {
	var errs []error
	if len(c.Domains) == 0 {
		errs = append(errs, errors.New("tls.acme.domains: at least one host name is required"))
	}
	if c.Cache == nil {
		errs = append(errs, errors.New("tls.acme: no certificate cache (the store)"))
	}
	if c.RenewBefore < 0 {
		errs = append(errs, fmt.Errorf("tls.acme.renew_before: %v must not be negative", c.RenewBefore))
	}
	return errors.Join(errs...)
}

// acmeSource serves certificates from an autocert.Manager and remembers
// the expiry of each it served, for the expiry gauge.
type acmeSource struct {
	cfg ACMEConfig
	mgr *autocert.Manager
	// http01 answers HTTP-01 challenges; nil without ACMEConfig.HTTP01.
	// It is made with the manager: autocert offers HTTP-01 only once
	// its handler exists, and the first order may start right away.
	http01 http.Handler

	mu       sync.Mutex
	notAfter map[string]time.Time
	reported time.Time // the earliest expiry last reported to the hook
}

func newACMESource(cfg ACMEConfig) (*acmeSource, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.DirectoryCAFile != "" {
		pem, err := readFile("tls.acme.directory_ca_file "+cfg.DirectoryCAFile, cfg.DirectoryCAFile)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.directory_ca_file %s: no PEM certificate in it", cfg.DirectoryCAFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
	mgr := &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       acmeCache{cfg.Cache},
		HostPolicy:  autocert.HostWhitelist(cfg.Domains...),
		RenewBefore: cfg.RenewBefore,
		Email:       cfg.Email,
		Client:      &acme.Client{DirectoryURL: cfg.DirectoryURL, HTTPClient: hc},
	}
	src := &acmeSource{cfg: cfg, mgr: mgr, notAfter: map[string]time.Time{}}
	if cfg.HTTP01 {
		src.http01 = withoutHostPort(mgr.HTTPHandler(nil))
	}
	return src, nil
}

// getCertificate answers a handshake: the TLS-ALPN-01 challenge
// certificate, or the host's certificate from memory, the shared cache,
// or a new order.
func (a *acmeSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.mgr.GetCertificate(hello)
	if err != nil || isALPNChallenge(hello) {
		return cert, err
	}
	if cert.Leaf != nil {
		a.mu.Lock()
		a.notAfter[strings.ToLower(hello.ServerName)] = cert.Leaf.NotAfter
		a.mu.Unlock()
	}
	return cert, nil
}

func isALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ACMEALPNProto
}

// earliestExpiry returns the earliest NotAfter of the certificates served
// so far; ok is false before the first.
func (a *acmeSource) earliestExpiry() (earliest time.Time, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.notAfter {
		if !ok || t.Before(earliest) {
			earliest, ok = t, true
		}
	}
	return earliest, ok
}

// obtainAll loads or obtains the certificate of every domain, so the first
// client does not wait for an order and expiry is known from the start.
// Failures are logged and retried by the next handshake or call.
func (a *acmeSource) obtainAll(ctx context.Context, log func(domain string, err error)) {
	for _, d := range a.cfg.Domains {
		if ctx.Err() != nil {
			return
		}
		_, err := a.getCertificate(&tls.ClientHelloInfo{ServerName: d, SupportedProtos: []string{"h2", "http/1.1"},
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}})
		log(d, err)
	}
}

// HTTPHandler answers HTTP-01 challenges under /.well-known/acme-challenge/
// and redirects every other request to https, for port 80 (or what the
// load balancer maps there); nil unless ACMEConfig.HTTP01 is set.
func (m *Manager) HTTPHandler() http.Handler {
	if m.acme == nil {
		return nil
	}
	return m.acme.http01
}

// withoutHostPort drops a port from the Host header before autocert's
// host policy sees it: the policy is about names, and a load balancer (or
// a test CA) may reach the challenge listener on a port other than 80.
func withoutHostPort(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = host
		}
		next.ServeHTTP(w, r)
	})
}

// acmeCache is autocert's Cache over the store.
type acmeCache struct {
	store CertificateStore
}

func (c acmeCache) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.store.GetCertificateData(ctx, key)
	if errors.Is(err, ErrNotCached) {
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

func (c acmeCache) Put(ctx context.Context, key string, data []byte) error {
	return c.store.PutCertificateData(ctx, key, data)
}

func (c acmeCache) Delete(ctx context.Context, key string) error {
	return c.store.DeleteCertificateData(ctx, key)
}

var _ autocert.Cache = acmeCache{}

// withACMEProto adds the TLS-ALPN-01 protocol to a listener's protocols.
func withACMEProto(protos []string) []string {
	if slices.Contains(protos, ACMEALPNProto) {
		return protos
	}
	return append(slices.Clone(protos), ACMEALPNProto)
}

// logACME logs the outcome of obtaining a domain's certificate at start.
func (m *Manager) logACME(domain string, err error) {
	if err != nil {
		m.cfg.Logger.Error("acme: no certificate yet; the next handshake retries", "domain", domain, "err", err)
		return
	}
	m.cfg.Logger.Info("acme: certificate ready", "domain", domain)
	if hook := m.hook.Load(); hook != nil {
		(*hook)(nil)
	}
}

// reportACMERenewal calls the reload hook when the earliest expiry of the
// ACME certificates changed (a renewal), so the expiry gauge follows.
func (m *Manager) reportACMERenewal() {
	if m.acme == nil {
		return
	}
	t, ok := m.acme.earliestExpiry()
	m.acme.mu.Lock()
	changed := ok && !t.Equal(m.acme.reported)
	m.acme.reported = t
	m.acme.mu.Unlock()
	if hook := m.hook.Load(); changed && hook != nil {
		(*hook)(nil)
	}
}
