package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

const acmeDomain = "ztp.acme.test"

const acmePolicies = `@id("everyone") permit (principal, action, resource == Route::"app");`

// acmeEnv is pebble (a real ACME server; its DNS answers every name with
// 127.0.0.1), dynalite as the shared store, and an upstream.
type acmeEnv struct {
	dir      string
	pebble   *testenv.Pebble
	ddb      *testenv.Dynalite
	upstream string
}

func newACMEEnv(t *testing.T, opts testenv.PebbleOptions) *acmeEnv {
	t.Helper()
	e := &acmeEnv{dir: t.TempDir()}
	e.pebble = testenv.StartPebble(t, opts)
	e.ddb = testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	t.Cleanup(up.Close)
	e.upstream = up.URL
	writeFile(t, filepath.Join(e.dir, "p.cedar"), acmePolicies)
	return e
}

// config writes the config of one replica; extra is added to tls.acme.
func (e *acmeEnv) config(t *testing.T, name, public, admin, extra string) string {
	t.Helper()
	path := filepath.Join(e.dir, name+".yaml")
	writeFile(t, path, fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls:
  acme:
    domains: [%s]
    email: ops@acme.test
    directory_url: %q
    directory_ca_file: %q
    accept_tos: true
    %s
policies: [p.cedar]
idps:
  - {name: corp, issuer: "https://idp.acme.test", audiences: [ztproxy]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {backend: dynamodb, endpoint: %q, table_prefix: acme_, revocation_journal: %s-revocations.db}
routes:
  - {name: app, host: %s, path_prefix: /app, upstream: %q, auth: public}
`, public, admin, acmeDomain, acmeDomain, e.pebble.DirectoryURL, e.pebble.CAFile, extra, e.ddb.Endpoint, name, acmeDomain, e.upstream))
	return path
}

// servedCertificate connects to addr with SNI serverName, verifies the
// chain against pebble's roots, fetches /app through it, and returns the
// leaf's SHA-256 fingerprint.
func servedCertificate(t *testing.T, roots *x509.CertPool, addr, serverName string) (string, error) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + serverName + "/app/x")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "app" {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	fp := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
	return hex.EncodeToString(fp[:]), nil
}

// waitCertificate polls until addr serves a certificate for serverName
// that chains to pebble's roots.
func waitCertificate(t *testing.T, roots *x509.CertPool, addr, serverName string) string {
	t.Helper()
	var fp string
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if fp, err = servedCertificate(t, roots, addr, serverName); err == nil {
			return fp
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no certificate for %s on %s: %v", serverName, addr, err)
	return ""
}

// Issue 19 (ACME): the real binary obtains its certificate from pebble with
// TLS-ALPN-01 on its own TLS listener and serves it; a second replica on
// the same DynamoDB store (dynalite) serves the same certificate without a
// new order; a name outside tls.acme.domains gets no certificate and starts
// no order.
func TestACMEReplicasShareCertificate(t *testing.T) {
	pubA, pubB := testenv.FreePort(t), testenv.FreePort(t)
	e := newACMEEnv(t, testenv.PebbleOptions{TLSPort: pubA, HTTPPort: testenv.FreePort(t)})
	addrA, addrB := fmt.Sprintf("127.0.0.1:%d", pubA), fmt.Sprintf("127.0.0.1:%d", pubB)
	admA, admB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgA, cfgB := e.config(t, "a", addrA, admA, ""), e.config(t, "b", addrB, admB, "")
	if code, out := runZtproxy(t, "check-config", "--config", cfgA); code != 0 || !strings.Contains(out, "the ACME CA is not contacted") {
		t.Fatalf("check-config: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "store", "init", "--config", cfgA); code != 0 || !strings.Contains(out, "acme_certificates ready") {
		t.Fatalf("store init: %d %s", code, out)
	}
	a := startServe(t, cfgA, admA, addrA)
	roots := e.pebble.Roots(t)
	fpA := waitCertificate(t, roots, addrA, acmeDomain)
	if n := e.pebble.Issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates, want 1", n)
	}
	waitFor(t, 10*time.Second, "the server certificate's expiry metric", func() bool {
		return strings.Contains(a.metrics(t), `ztproxy_cert_expiry_timestamp_seconds{cert="server"}`)
	})

	// A reload with tls.acme unchanged is not taken for a TLS change.
	data, err := os.ReadFile(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgA, string(data)+"# touched\n")
	waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(a.output(), "configuration reloaded") })
	if strings.Contains(a.output(), "TLS file settings changed") {
		t.Error("reload with the same tls.acme warns of a TLS change")
	}

	startServe(t, cfgB, admB, addrB)
	if fpB := waitCertificate(t, roots, addrB, acmeDomain); fpB != fpA {
		t.Errorf("replica B serves certificate %s, replica A %s", fpB, fpA)
	}
	if _, err := servedCertificate(t, roots, addrA, "other.acme.test"); err == nil {
		t.Error("a certificate for a name outside tls.acme.domains")
	}
	if n := e.pebble.Issued(); n != 1 {
		t.Errorf("pebble issued %d certificates, want 1 (replica B must reuse the stored one)", n)
	}
}

// Issue 19 (ACME): with tls.acme.http_listen, HTTP-01 works: pebble's
// TLS-ALPN-01 validation reaches nothing here (its TLS port is closed), so
// the order falls back to HTTP-01 on the challenge listener, which also
// redirects every other request to https.
func TestACMEHTTP01(t *testing.T) {
	pub, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	e := newACMEEnv(t, testenv.PebbleOptions{TLSPort: testenv.FreePort(t), HTTPPort: httpPort})
	addr, adm := fmt.Sprintf("127.0.0.1:%d", pub), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := e.config(t, "h", addr, adm, fmt.Sprintf("http_listen: \"127.0.0.1:%d\"", httpPort))
	if code, out := runZtproxy(t, "store", "init", "--config", cfg); code != 0 {
		t.Fatalf("store init: %d %s", code, out)
	}
	startServe(t, cfg, adm, addr)
	waitCertificate(t, e.pebble.Roots(t), addr, acmeDomain)
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/app/x", httpPort), nil)
	req.Host = acmeDomain
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://"+acmeDomain+"/app/x") {
		t.Errorf("plain HTTP request: %d Location %q, want a redirect to https", resp.StatusCode, loc)
	}
}
