package devices_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"ztproxy/devices"
	"ztproxy/identity"
)

// Issue 16: an enrolled device gets a short-lived client certificate from
// the device CA: one SPIFFE URI SAN with its id, client-auth EKU only,
// digital signature only, bound to the owner in the inventory.
func TestEnrollIssuesDeviceCertificate(t *testing.T) {
	e := newEnv(t, func(c *devices.Config) { c.CertLifetime = 48 * time.Hour })
	issued, cert := e.enroll(t, e.alice())
	id := issued.Record.ID
	if !devices.ValidID(id) || issued.Record.Owner != "https://idp.example#alice" || issued.Record.Status != identity.DeviceActive {
		t.Fatalf("record = %+v", issued.Record)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://corp.example/device/"+id {
		t.Errorf("URI SANs = %v", cert.URIs)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("usage = %v / %v, CA %v", cert.ExtKeyUsage, cert.KeyUsage, cert.IsCA)
	}
	if want := e.clock.Now().Add(48 * time.Hour); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", cert.NotAfter, want)
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: e.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("does not chain to the device CA: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: e.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a device certificate must not serve TLS")
	}
	d := e.inv.DeviceFacts(context.Background(), presented(cert))
	if !d.Enrolled || !d.Checked || d.Owner != "https://idp.example#alice" || d.Status != identity.DeviceActive || !d.PostureTime.IsZero() {
		t.Errorf("DeviceFacts = %+v", d)
	}
}

// Issue 16: enrolment needs a fresh second factor (or a security key when
// configured), a user, a valid name and CSR; bad input changes nothing.
func TestEnrollRefusals(t *testing.T) {
	e := newEnv(t, func(c *devices.Config) { c.MaxPerUser = 2 })
	ctx := context.Background()
	_, good := csr(t)
	noMFA := e.alice()
	noMFA.AMR = []string{"pwd"}
	stale := e.alice()
	stale.AuthTime = e.clock.Now().Add(-time.Hour)
	service := &identity.Principal{Kind: identity.KindService, ID: "spiffe://corp/ci", AuthTime: e.clock.Now()}
	tests := []struct {
		name string
		p    *identity.Principal
		dev  string
		csr  []byte
		want string
	}{
		{"no second factor", noMFA, "laptop", good, "fresh mfa"},
		{"second factor too old", stale, "laptop", good, "fresh mfa"},
		{"a service", service, "laptop", good, "only a signed-in user"},
		{"control characters in the name", e.alice(), "lap\x1btop", good, "printable"},
		{"garbage CSR", e.alice(), "laptop", []byte("not a csr"), "PKCS#10"},
		{"CSR with a broken signature", e.alice(), "laptop", append(good[:len(good)-4:len(good)-4], 1, 2, 3, 4), "csr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.inv.Enroll(ctx, tt.p, tt.dev, tt.csr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Enroll = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if all, _ := e.inv.List(ctx, ""); len(all) != 0 {
		t.Fatalf("refused enrolments stored %d devices", len(all))
	}
	e.enroll(t, e.alice())
	e.enroll(t, e.alice())
	if _, err := e.inv.Enroll(ctx, e.alice(), "third", good); !errors.Is(err, devices.ErrTooManyDevices) {
		t.Errorf("third device = %v, want ErrTooManyDevices", err)
	}
	webauthnOnly := newEnv(t, func(c *devices.Config) { c.Enrollment.Require = devices.RequireWebAuthn })
	if got := webauthnOnly.inv.EnrollmentRequirement(e.alice()); got != devices.RequireWebAuthn {
		t.Errorf("IdP MFA satisfied require: webauthn (%q)", got)
	}
	withKey := e.alice()
	withKey.AMR = append(withKey.AMR, "webauthn")
	if got := webauthnOnly.inv.EnrollmentRequirement(withKey); got != "" {
		t.Errorf("a fresh security key did not satisfy require: webauthn (%q)", got)
	}
}

// Issue 16 targets: a known device costs no store read per request, and at
// most one per device per cache TTL; a revocation made through another
// replica is refused here within the TTL.
func TestDeviceFactsCacheAndRevocationAcrossReplicas(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	issued, cert := e.enroll(t, e.alice())
	dev := presented(cert)
	other := e.replica(t) // replica B over the same store
	b := other.DeviceFacts(ctx, dev)
	if !b.Enrolled {
		t.Fatalf("replica B: %+v", b)
	}
	readsBefore := e.store.gets.Load()
	for range 1000 {
		if d := other.DeviceFacts(ctx, dev); !d.Enrolled {
			t.Fatal("lost the device")
		}
	}
	if n := e.store.gets.Load() - readsBefore; n != 0 {
		t.Fatalf("%d store reads for 1000 cached lookups, want 0", n)
	}
	// Replica A (e.inv) revokes; B keeps its cached answer until the TTL.
	if _, err := e.inv.Revoke(ctx, issued.Record.ID, identity.DeviceRevoked, "operator:test", "laptop stolen"); err != nil {
		t.Fatal(err)
	}
	if d := e.inv.DeviceFacts(ctx, dev); !d.Refused() {
		t.Errorf("replica A does not refuse its own revocation at once: %+v", d)
	}
	e.clock.Advance(29 * time.Second)
	if d := other.DeviceFacts(ctx, dev); d.Refused() {
		t.Error("replica B refused before its cache TTL (the test clock is off)")
	}
	readsBefore = e.store.gets.Load()
	e.clock.Advance(2 * time.Second)
	for range 100 {
		if d := other.DeviceFacts(ctx, dev); !d.Refused() {
			t.Fatalf("replica B still admits the revoked device after the TTL: %+v", d)
		}
	}
	if n := e.store.gets.Load() - readsBefore; n != 1 {
		t.Errorf("%d store reads in one TTL, want 1", n)
	}
}

// Issue 16: a certificate ztproxy did not issue, or a replaced one, is not
// an enrolled device, whatever its SPIFFE id says.
func TestDeviceFactsForeignAndReplacedCertificates(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	issued, cert := e.enroll(t, e.alice())
	forged := presented(cert)
	forged.Fingerprint = strings.Repeat("ab", 32) // same id, another certificate
	if d := e.inv.DeviceFacts(ctx, forged); d.Enrolled || !d.Checked {
		t.Errorf("a certificate with the device's id but another fingerprint: %+v", d)
	}
	foreign := identity.Device{Present: true, SPIFFEID: "spiffe://other.example/device/" + issued.Record.ID, Fingerprint: forged.Fingerprint}
	if d := e.inv.DeviceFacts(ctx, foreign); d.Enrolled || !d.Checked {
		t.Errorf("another trust domain: %+v", d)
	}
	if d := e.inv.DeviceFacts(ctx, identity.Device{}); d.Checked {
		t.Error("no certificate was checked")
	}

	// Renewal: the new certificate and the previous one are accepted, the
	// one before is not; only the current one may renew.
	_, req := csr(t)
	renewed, err := e.inv.Renew(ctx, presented(cert), req)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := x509.ParseCertificate(renewed.Certificate)
	if d := e.inv.DeviceFacts(ctx, presented(second)); !d.Enrolled {
		t.Error("renewed certificate not enrolled")
	}
	if d := e.inv.DeviceFacts(ctx, presented(cert)); !d.Enrolled {
		t.Error("previous certificate refused during renewal")
	}
	if _, err := e.inv.Renew(ctx, presented(cert), req); !errors.Is(err, devices.ErrNotCurrent) {
		t.Errorf("renewal with the previous certificate = %v, want ErrNotCurrent", err)
	}
	third, err := e.inv.Renew(ctx, presented(second), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.inv.DeviceFacts(ctx, presented(cert)); d.Enrolled {
		t.Error("a certificate two renewals old is still enrolled")
	}
	if third.Record.PreviousFingerprint != presented(second).Fingerprint {
		t.Errorf("previous fingerprint = %s", third.Record.PreviousFingerprint)
	}
}

// Issue 16: a user removes their own device, never another's.
func TestRemoveOwnDeviceOnly(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	issued, cert := e.enroll(t, e.alice())
	if err := e.inv.Remove(ctx, "https://idp.example#bob", issued.Record.ID); !errors.Is(err, devices.ErrNotFound) {
		t.Errorf("bob removing alice's device = %v, want ErrNotFound", err)
	}
	if d := e.inv.DeviceFacts(ctx, presented(cert)); d.Refused() {
		t.Fatal("bob's attempt revoked alice's device")
	}
	if err := e.inv.Remove(ctx, "https://idp.example#alice", issued.Record.ID); err != nil {
		t.Fatal(err)
	}
	if d := e.inv.DeviceFacts(ctx, presented(cert)); !d.Refused() {
		t.Errorf("removed device still admitted: %+v", d)
	}
	if _, err := e.inv.Report(ctx, presented(cert), []byte(`{"facts":{"os":"debian"}}`)); !errors.Is(err, devices.ErrRevoked) {
		t.Errorf("report from a removed device = %v, want ErrRevoked", err)
	}
}

// BenchmarkDeviceFactsCached is the per-request cost of a known device
// (target: at most 2 µs/op, no store call).
func BenchmarkDeviceFactsCached(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	_, cert := e.enroll(b, e.alice())
	if _, err := e.inv.Report(ctx, presented(cert), []byte(`{"facts":{"os":"debian","disk_encrypted":true,"firewall":null}}`)); err != nil {
		b.Fatal(err)
	}
	dev := presented(cert)
	e.inv.DeviceFacts(ctx, dev)
	reads := e.store.gets.Load()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d := e.inv.DeviceFacts(ctx, dev); !d.Enrolled {
				b.Fatal("not enrolled")
			}
		}
	})
	b.StopTimer()
	if n := e.store.gets.Load() - reads; n != 0 {
		b.Fatalf("%d store reads", n)
	}
}
