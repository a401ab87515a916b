package authn

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// assertionClaimsFor are a front proxy's assertion claims for aud.
func assertionClaimsFor(aud, email string) map[string]any {
	return map[string]any{
		"iss": "https://front.example", "aud": aud, "sub": "https://idp.example#alice", "kind": "User", "auth": "bearer",
		"email": email, "email_verified": true, "groups": []string{"eng"},
		"iat": testEpoch.Unix(), "exp": testEpoch.Add(time.Hour).Unix(),
	}
}

func newTestAssertionVerifier(t *testing.T, clock *testClock, sources ...string) *AssertionVerifier {
	t.Helper()
	v, err := NewAssertionVerifier(AssertionConfig{
		Sources: sources, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAssertionVerifierKeys: trusted JWKS URLs get the IdP key rules: no
// redirects, withdrawn keys refused after a refresh.
// Issues 12.3 and 22.1 for sidecar trusted_jwks.
func TestAssertionVerifierKeys(t *testing.T) {
	ctx := context.Background()
	k1, k2 := testenv.NewECSigningKey(t, "k1"), testenv.NewECSigningKey(t, "k2")
	front := testenv.StartHostileIdP(t, k1, k2)
	clock := newTestClock(testEpoch)
	v := newTestAssertionVerifier(t, clock, front.JWKSURL())
	if _, _, err := v.Verify(ctx, testenv.Token(k1, assertionClaimsFor("orders", "alice@corp.test")), "orders"); err != nil {
		t.Fatalf("valid assertion: %v", err)
	}
	if _, _, err := v.Verify(ctx, testenv.Token(k1, assertionClaimsFor("billing", "alice@corp.test")), "orders"); err == nil {
		t.Error("assertion for another service accepted")
	}
	front.Publish(k2)
	clock.advance(DefaultJWKSRefreshInterval)
	if _, _, err := v.Verify(ctx, testenv.Token(k2, assertionClaimsFor("orders", "alice@corp.test")), "orders"); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if _, _, err := v.Verify(ctx, testenv.Token(k1, assertionClaimsFor("orders", "alice@corp.test")), "orders"); err == nil {
		t.Error("assertion signed with the withdrawn key accepted")
	}

	evilKey := testenv.NewECSigningKey(t, "evil")
	attacker := testenv.StartHostileIdP(t, evilKey)
	redirecting := testenv.StartHostileIdP(t)
	redirecting.RedirectJWKS(attacker.JWKSURL())
	v = newTestAssertionVerifier(t, clock, redirecting.JWKSURL())
	if _, _, err := v.Verify(ctx, testenv.Token(evilKey, assertionClaimsFor("orders", "alice@corp.test")), "orders"); err == nil {
		t.Fatal("assertion signed by the redirect target's key accepted")
	}
	if attacker.JWKSFetches() != 0 {
		t.Errorf("the redirect was followed: %d fetches at its target", attacker.JWKSFetches())
	}
}

// TestAssertionVerifierEmail: the sidecar applies the email rule to the
// assertion too and carries email_verified.
// Issue 12.7.
func TestAssertionVerifierEmail(t *testing.T) {
	key := testenv.NewECSigningKey(t, "k1")
	jwks, _ := json.Marshal(map[string]any{"keys": []any{key.JWK()}})
	file := filepath.Join(t.TempDir(), "front.jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	v := newTestAssertionVerifier(t, newTestClock(testEpoch), file)
	ctx := context.Background()
	p, _, err := v.Verify(ctx, testenv.Token(key, assertionClaimsFor("orders", "alice@corp.test")), "orders")
	if err != nil || p.Email != "alice@corp.test" || !p.EmailVerified {
		t.Fatalf("good email: %q verified %v, %v", p.Email, p.EmailVerified, err)
	}
	p, _, err = v.Verify(ctx, testenv.Token(key, assertionClaimsFor("orders", "x@evil.test,y@corp.test")), "orders")
	if err != nil || p.Email != "" || p.EmailVerified {
		t.Fatalf("bad email: %q verified %v, %v", p.Email, p.EmailVerified, err)
	}
}

// TestAssertionVerifierFollowsRotation: issue 19, the front proxy's signing
// key rotates by reload. A sidecar that cached the old JWKS refetches it
// for the new kid at once, instead of refusing assertions until its
// refresh interval; a flood of unknown kids costs at most one fetch per
// jwks_min_refetch_interval.
func TestAssertionVerifierFollowsRotation(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey, forged := testenv.NewECSigningKey(t, "old"), testenv.NewECSigningKey(t, "new"), testenv.NewECSigningKey(t, "forged")
	front := testenv.StartHostileIdP(t, oldKey)
	clock := newTestClock(testEpoch)
	v := newTestAssertionVerifier(t, clock, front.JWKSURL())
	if _, _, err := v.Verify(ctx, testenv.Token(oldKey, assertionClaimsFor("orders", "a@corp.test")), "orders"); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	front.Publish(newKey, oldKey) // promoted: the new key signs, the old one stays published
	clock.advance(DefaultJWKSMinRefetchInterval)
	if _, _, err := v.Verify(ctx, testenv.Token(newKey, assertionClaimsFor("orders", "a@corp.test")), "orders"); err != nil {
		t.Fatalf("new kid right after the rotation: %v", err)
	}
	if _, _, err := v.Verify(ctx, testenv.Token(oldKey, assertionClaimsFor("orders", "a@corp.test")), "orders"); err != nil {
		t.Fatalf("old kid still published: %v", err)
	}
	fetches := front.JWKSFetches()
	for range 100 {
		if _, _, err := v.Verify(ctx, testenv.Token(forged, assertionClaimsFor("orders", "a@corp.test")), "orders"); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if got := front.JWKSFetches() - fetches; got > 1 {
		t.Errorf("100 unknown kids within jwks_min_refetch_interval: %d fetches, want at most 1", got)
	}
}
