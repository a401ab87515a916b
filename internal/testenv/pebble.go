package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PebbleVersion is the version of pebble (Let's Encrypt's ACME test
// server) and its pebble-challtestsrv (a DNS server that answers every
// name with 127.0.0.1) the ACME tests run, built with `go install
// github.com/letsencrypt/pebble/v2/cmd/{pebble,pebble-challtestsrv}@<version>`
// into PebbleBinary's directory (.ci/run does it when they are missing).
const PebbleVersion = "v2.10.3"

// PebbleBinary is where the cached pebble binaries live: the directory
// $ZTPROXY_PEBBLE_DIR when set, else ~/.cache/ztproxy-pebble/<version>.
func PebbleBinary(name string) string {
	if d := os.Getenv("ZTPROXY_PEBBLE_DIR"); d != "" {
		return filepath.Join(d, name)
	}
	return filepath.Join(cacheDir(), "ztproxy-pebble", PebbleVersion, name)
}

// PebbleOptions configures StartPebble: the ports pebble's validation
// authority connects to for HTTP-01 and TLS-ALPN-01 challenges, on the
// address the DNS server gives every name (127.0.0.1).
type PebbleOptions struct {
	HTTPPort, TLSPort int
}

// Pebble is a running ACME server.
type Pebble struct {
	// DirectoryURL is the ACME directory (HTTPS).
	DirectoryURL string
	// CAFile is the PEM root that signs pebble's own HTTPS certificate:
	// ACME clients trust it to reach DirectoryURL.
	CAFile string

	management string
	log        *tailBuffer
}

// StartPebble starts pebble-challtestsrv (DNS only) and pebble on free
// loopback ports and stops them when the test ends. Without the binaries
// the test skips, or fails under CI.
func StartPebble(t testing.TB, opts PebbleOptions) *Pebble {
	t.Helper()
	for _, name := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := os.Stat(PebbleBinary(name)); err != nil {
			RequireComponent(t, name, fmt.Errorf("%w (go install github.com/letsencrypt/pebble/v2/cmd/%s@%s, or run .ci/run)", err, name, PebbleVersion))
		}
	}
	dir := t.TempDir()
	dns := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	startPebbleProcess(t, "pebble-challtestsrv", newTailBuffer(16<<10), nil,
		"-dnsserver", dns, "-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", "",
		"-management", "127.0.0.1:"+strconv.Itoa(FreePort(t)), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	p := &Pebble{log: newTailBuffer(256 << 10), CAFile: filepath.Join(dir, "pebble-https-ca.pem")}
	certFile, keyFile := writePebbleHTTPSCert(t, dir, p.CAFile)
	listen := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p.management = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress": listen, "managementListenAddress": p.management,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": opts.HTTPPort, "tlsPort": opts.TLSPort,
		"externalAccountBindingRequired": false, "domainBlocklist": []string{"blocked-domain.example"},
	}
	data, _ := json.Marshal(cfg)
	configFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// No random validation delays, no nonce rejections, fresh
	// authorizations for every order: fast and deterministic.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	startPebbleProcess(t, "pebble", p.log, env, "-config", configFile, "-dnsserver", dns)
	p.DirectoryURL = "https://" + listen + "/dir"
	if err := p.waitReady(30 * time.Second); err != nil {
		t.Fatalf("testenv: %v\n%s", err, p.log.String())
	}
	return p
}

func startPebbleProcess(t testing.TB, name string, log *tailBuffer, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(PebbleBinary(name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childProcAttr()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("testenv: %s output (tail):\n%s", name, log.String())
		}
	})
}

func (p *Pebble) client() *http.Client {
	pool := x509.NewCertPool()
	if data, err := os.ReadFile(p.CAFile); err == nil {
		pool.AppendCertsFromPEM(data)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (p *Pebble) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := p.client()
	for {
		resp, err := c.Get(p.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pebble not ready within %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Roots returns the PEM root certificates that chain the certificates
// pebble issues (a new set every start), from its management interface.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.client().Get("https://" + p.management + "/roots/0")
	if err != nil {
		t.Fatalf("testenv: pebble roots: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	pool := x509.NewCertPool()
	if resp.StatusCode != http.StatusOK || !pool.AppendCertsFromPEM(data) {
		t.Fatalf("testenv: pebble roots: %d %s", resp.StatusCode, data)
	}
	return pool
}

// Issued counts the certificates pebble has issued so far.
func (p *Pebble) Issued() int {
	return strings.Count(p.log.String(), "Issued certificate serial")
}

// writePebbleHTTPSCert makes a CA and a certificate for 127.0.0.1 and
// localhost for pebble's own HTTPS listeners.
func writePebbleHTTPSCert(t testing.TB, dir, caFile string) (certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ztproxy test pebble HTTPS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost", "pebble"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "pebble-https.pem"), filepath.Join(dir, "pebble-https-key.pem")
	for file, block := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile: {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}
