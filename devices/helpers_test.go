package devices_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/devices"
	"ztproxy/identity"
	"ztproxy/store"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore counts the reads of a real store (bbolt through config's
// adapter), to check the per-request lookup's store traffic.
type countingStore struct {
	devices.Store
	gets atomic.Int64
}

func (s *countingStore) GetDevice(ctx context.Context, id string) (devices.Record, error) {
	s.gets.Add(1)
	return s.Store.GetDevice(ctx, id)
}

// env is one test inventory over a real embedded store, with the CA
// written by certs.WriteDeviceCA and a log the test can read.
type env struct {
	inv   *devices.Inventory
	store *countingStore
	clock *clock
	ca    *x509.Certificate
	log   *bytes.Buffer
	cfg   devices.Config
}

func newEnv(t testing.TB, mutate func(*devices.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	files, err := certs.WriteDeviceCA(certs.DeviceCAOptions{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	ca, key, err := certs.LoadCA(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	e := &env{store: &countingStore{Store: config.DeviceStore(bolt)}, clock: newClock(), ca: ca, log: &bytes.Buffer{}}
	e.cfg = devices.Config{
		CACert: ca, CAKey: key, TrustDomain: "corp.example", Store: e.store, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: e.log}, nil)), CacheTTL: 30 * time.Second,
	}
	if mutate != nil {
		mutate(&e.cfg)
	}
	if e.inv, err = devices.New(e.cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// replica is another inventory over the same store (another proxy).
func (e *env) replica(t testing.TB) *devices.Inventory {
	inv, err := devices.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// alice signed in at the IdP with a second factor a minute ago.
func (e *env) alice() *identity.Principal {
	return &identity.Principal{
		Kind: identity.KindUser, ID: "https://idp.example#alice", Subject: "alice", AuthKind: identity.AuthBrowser,
		AMR: []string{"pwd", "otp"}, AuthTime: e.clock.Now().Add(-time.Minute),
	}
}

// csr makes a device key and its certificate request.
func csr(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "laptop"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// enroll enrols a device for p and returns its certificate.
func (e *env) enroll(t testing.TB, p *identity.Principal) (devices.Issued, *x509.Certificate) {
	t.Helper()
	_, req := csr(t)
	issued, err := e.inv.Enroll(context.Background(), p, "laptop", req)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	cert, err := x509.ParseCertificate(issued.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return issued, cert
}

// presented is the identity.Device a listener would build from cert.
func presented(cert *x509.Certificate) identity.Device {
	sum := sha256.Sum256(cert.Raw)
	d := identity.Device{Present: true, Fingerprint: hex.EncodeToString(sum[:]), NotAfter: cert.NotAfter}
	if len(cert.URIs) == 1 {
		d.SPIFFEID = cert.URIs[0].String()
		d.ID = d.SPIFFEID
	}
	return d
}
