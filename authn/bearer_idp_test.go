package authn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestVerifyDiscoveryIssuerMismatch(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	evil := "https://evil.example"
	iss.SetAdvertisedIssuer(evil)
	v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
	raw := sign(t, key, baseClaims(iss.URL()))
	_, err := v.Verify(context.Background(), raw)
	be := wantBearerError(t, err, CodeInvalidToken, "unavailable", raw)
	if !errors.Is(be, ErrIdPUnavailable) {
		t.Errorf("error %v does not wrap ErrIdPUnavailable", be)
	}
}

func TestVerifyWithConfiguredJWKSURLSkipsDiscovery(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetDiscoveryDown(true)
	v := newTestVerifier(t, iss, newTestClock(testEpoch), func(c *IdPConfig) { c.JWKSURL = iss.URL() + "/jwks" })
	if _, err := v.Verify(context.Background(), sign(t, key, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := iss.DiscoveryFetches(); n != 0 {
		t.Errorf("discovery requests = %d, want 0", n)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	k1, k2 := rsaKey(t, 0, "k1"), rsaKey(t, 1, "k2")
	iss := newTestIssuer(t, k1)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, k1, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify with k1: %v", err)
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS requests after first token = %d, want 1", n)
	}
	iss.setKeys(k2)
	clock.advance(DefaultJWKSMinRefetchInterval)
	if _, err := v.Verify(ctx, sign(t, k2, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify with rotated k2: %v", err)
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Errorf("JWKS requests after unknown kid = %d, want 2 (one refetch)", n)
	}
}

func TestVerifyJWKSDownKeepsLastGoodKeys(t *testing.T) {
	k1 := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, k1)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, k1, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	iss.SetJWKSDown(true)
	// A different token (so not served from the token cache) signed with
	// the known key still verifies from the kept keys.
	if _, err := v.Verify(ctx, sign(t, k1, withClaims(baseClaims(iss.URL()), "sub", "user-456"))); err != nil {
		t.Fatalf("Verify with JWKS down: %v", err)
	}
	// A token with an unknown kid triggers a refetch that fails...
	clock.advance(DefaultJWKSMinRefetchInterval)
	rotated := sign(t, rsaKey(t, 1, "k2"), baseClaims(iss.URL()))
	_, err := v.Verify(ctx, rotated)
	wantBearerError(t, err, CodeInvalidToken, "identity provider unavailable", rotated)
	// ...and the failed refetch does not drop the known key.
	if _, err := v.Verify(ctx, sign(t, k1, withClaims(baseClaims(iss.URL()), "sub", "user-789"))); err != nil {
		t.Fatalf("Verify after failed refetch: %v", err)
	}
}

func TestVerifyDiscoveryDownAtConstruction(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetDiscoveryDown(true)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, nil) // must not need the IdP
	if n := iss.DiscoveryFetches(); n != 0 {
		t.Fatalf("constructor made %d discovery requests, want 0", n)
	}
	ctx := context.Background()
	raw := sign(t, key, withClaims(baseClaims(iss.URL()), "exp", testEpoch.Add(24*time.Hour).Unix()))
	for range 3 {
		_, err := v.Verify(ctx, raw)
		if be := wantBearerError(t, err, CodeInvalidToken, "identity provider unavailable", raw); !errors.Is(be, ErrIdPUnavailable) {
			t.Errorf("error %v does not wrap ErrIdPUnavailable", be)
		}
	}
	if n := iss.DiscoveryFetches(); n != 1 {
		t.Errorf("discovery requests within the retry interval = %d, want 1", n)
	}
	iss.SetDiscoveryDown(false)
	clock.advance(discoveryRetryInterval)
	p, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify after IdP came up: %v", err)
	}
	if p.Subject != "user-123" {
		t.Errorf("Subject = %q", p.Subject)
	}
}

// TestVerifyConcurrentFirstUse checks that requests racing on a fresh
// verifier share one discovery and one JWKS fetch.
func TestVerifyConcurrentFirstUse(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = sign(t, key, withClaims(baseClaims(iss.URL()), "sub", fmt.Sprintf("user-%d", i)))
	}
	var wg sync.WaitGroup
	for _, raw := range tokens {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), raw); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if d, j := iss.DiscoveryFetches(), iss.JWKSFetches(); d != 1 || j != 1 {
		t.Errorf("discovery requests %d, JWKS requests %d; want 1 and 1", d, j)
	}
}

// TestVerifyRefusesRedirectedKeys: an issuer whose discovery document or
// JWKS redirects to another server never makes that server's keys trusted.
// Issue 12.3: tokens signed by the redirect target's key were accepted.
func TestVerifyRefusesRedirectedKeys(t *testing.T) {
	good, evil := rsaKey(t, 0, "k1"), rsaKey(t, 1, "k1")
	for _, tc := range []struct {
		name  string
		setup func(iss, other *testIssuer) func(*IdPConfig)
	}{
		{"discovery", func(iss, other *testIssuer) func(*IdPConfig) {
			other.SetAdvertisedIssuer(iss.URL())
			iss.RedirectDiscovery(other.DiscoveryURL())
			return nil
		}},
		{"jwks_uri", func(iss, other *testIssuer) func(*IdPConfig) {
			iss.RedirectJWKS(other.JWKSURL())
			return nil
		}},
		{"jwks_url", func(iss, other *testIssuer) func(*IdPConfig) {
			iss.RedirectJWKS(other.JWKSURL())
			return func(c *IdPConfig) { c.JWKSURL = iss.JWKSURL() }
		}},
		{"plain http jwks_uri in the discovery document", func(iss, other *testIssuer) func(*IdPConfig) {
			iss.EditDiscovery(func(doc map[string]any) { doc["jwks_uri"] = "http://keys.example.com/jwks" })
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, other := newTestIssuer(t, good), newTestIssuer(t, evil)
			v := newTestVerifier(t, iss, newTestClock(testEpoch), tc.setup(iss, other))
			forged := sign(t, evil, baseClaims(iss.URL()))
			_, err := v.Verify(context.Background(), forged)
			if be := wantBearerError(t, err, CodeInvalidToken, "identity provider unavailable", forged); !errors.Is(be, ErrIdPUnavailable) {
				t.Errorf("error %v does not wrap ErrIdPUnavailable", be)
			}
			if n := other.DiscoveryFetches() + other.JWKSFetches(); n != 0 {
				t.Errorf("the redirect target was fetched %d times", n)
			}
		})
	}
}
