package authn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// keySetFixture is a KeySet over a hostile IdP's JWKS with a fake clock
// and counted events.
type keySetFixture struct {
	idp     *testenv.HostileIdP
	clock   *testClock
	ks      *KeySet
	fetches atomic.Int64
	refused atomic.Int64
}

func newKeySetFixture(t testing.TB, refresh KeyRefresh, client *http.Client, keys ...*testenv.SigningKey) *keySetFixture {
	t.Helper()
	f := &keySetFixture{idp: testenv.StartHostileIdP(t, keys...), clock: newTestClock(testEpoch)}
	ks, err := NewKeySet(KeySetConfig{
		Name: "corp", URL: f.idp.JWKSURL(), Refresh: refresh, HTTPClient: client, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Events: KeySetEvents{
			Fetch:          func(string, string, error) { f.fetches.Add(1) },
			RefetchRefused: func(string) { f.refused.Add(1) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ks = ks
	return f
}

// token is a token signed by key with claims that do not matter here.
func (f *keySetFixture) token(key *testenv.SigningKey, header map[string]any) string {
	return testenv.TokenWithHeader(key, header, map[string]any{"iss": f.idp.Issuer, "sub": "alice"})
}

func (f *keySetFixture) verify(raw string) (*trustedKey, error) {
	_, key, err := f.ks.verify(context.Background(), raw, true)
	return key, err
}

func hostileKeys(t testing.TB) (k1, k2 *testenv.SigningKey) {
	return testenv.NewRSASigningKey(t, "k1", 0), testenv.NewRSASigningKey(t, "k2", 1)
}

// TestKeySetWithdrawnKey: a key missing from a scheduled refresh is refused
// at once and its trustedKey is marked withdrawn; a key still published
// keeps its identity across refreshes.
// Issue 22.1: a withdrawn signing key was accepted indefinitely.
func TestKeySetWithdrawnKey(t *testing.T) {
	k1, k2 := hostileKeys(t)
	f := newKeySetFixture(t, KeyRefresh{}, nil, k1, k2)
	used1, err := f.verify(f.token(k1, nil))
	if err != nil {
		t.Fatal(err)
	}
	used2, err := f.verify(f.token(k2, nil))
	if err != nil {
		t.Fatal(err)
	}
	f.idp.Publish(k2)
	f.clock.advance(DefaultJWKSRefreshInterval)
	if _, err := f.verify(f.token(k2, nil)); err != nil {
		t.Fatalf("k2 after the refresh: %v", err)
	}
	if n := f.idp.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS fetches = %d, want 2", n)
	}
	if !used1.withdrawn.Load() || used2.withdrawn.Load() {
		t.Errorf("withdrawn flags: k1 %v (want true), k2 %v (want false)", used1.withdrawn.Load(), used2.withdrawn.Load())
	}
	if used1.stillTrusted(f.clock.Now().UnixNano()) {
		t.Error("a verification made with the withdrawn k1 is still trusted")
	}
	if _, err := f.verify(f.token(k1, nil)); !errors.Is(err, errUnknownKID) {
		t.Errorf("k1 after withdrawal: %v, want unknown kid", err)
	}
}

// TestKeySetRefreshSchedule: when the set is due it is refreshed in the
// background (the request does not wait), honouring Cache-Control max-age
// within [MinRefetchInterval, Interval].
func TestKeySetRefreshSchedule(t *testing.T) {
	k1, _ := hostileKeys(t)
	f := newKeySetFixture(t, KeyRefresh{}, &http.Client{Timeout: time.Second}, k1)
	f.idp.SetJWKSCacheControl("public, max-age=60")
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(53 * time.Second) // before 0.9 × 60 s
	if _, err := f.verify(f.token(k1, nil)); err != nil || f.idp.JWKSFetches() != 1 {
		t.Fatalf("before the soft refresh time: %v, %d fetches", err, f.idp.JWKSFetches())
	}
	// From here a fetch starts in the background: make it slow and check
	// the request does not wait for it.
	f.idp.SetJWKSDrip(50 * time.Millisecond)
	f.clock.advance(2 * time.Second)
	start := time.Now()
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a request near the refresh time waited %s for the fetch", d)
	}
	waitUntil(t, "background fetch", func() bool { return f.idp.JWKSFetches() == 2 })
	waitUntil(t, "background fetch to end", func() bool { return f.fetches.Load() == 2 })

	for _, tc := range []struct {
		cacheControl string
		want         time.Duration
	}{
		{"", DefaultJWKSRefreshInterval},
		{"max-age=30", 30 * time.Second},
		{"max-age=0", DefaultJWKSMinRefetchInterval},
		{"no-store", DefaultJWKSMinRefetchInterval},
		{"private, max-age=86400", DefaultJWKSRefreshInterval},
		{"max-age=abc", DefaultJWKSRefreshInterval},
		{`max-age="120"`, 2 * time.Minute},
	} {
		h := http.Header{}
		if tc.cacheControl != "" {
			h.Set("Cache-Control", tc.cacheControl)
		}
		refresh := KeyRefresh{}
		_ = refresh.CheckAndSetDefaults()
		if got := jwksTTL(h, refresh); got != tc.want {
			t.Errorf("Cache-Control %q: ttl %s, want %s", tc.cacheControl, got, tc.want)
		}
	}
	h := http.Header{"Cache-Control": {"max-age=100"}, "Age": {"80"}}
	if got := jwksTTL(h, KeyRefresh{Interval: time.Hour, MinRefetchInterval: time.Second}); got != 20*time.Second {
		t.Errorf("max-age 100 with Age 80: ttl %s, want 20s", got)
	}
}

// TestKeySetFailingRefreshBoundedStaleness: while refreshes fail the last
// good keys are used for MaxStale past their refresh time, then tokens are
// refused as "identity provider unavailable" until a fetch succeeds.
func TestKeySetFailingRefreshBoundedStaleness(t *testing.T) {
	k1, _ := hostileKeys(t)
	refresh := KeyRefresh{Interval: time.Minute, MinRefetchInterval: 10 * time.Second, MaxStale: 10 * time.Minute}
	f := newKeySetFixture(t, refresh, nil, k1)
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatal(err)
	}
	f.idp.SetJWKSDown(true)
	f.clock.advance(time.Minute)
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatalf("first failed refresh: %v, want the last good keys", err)
	}
	f.clock.advance(9 * time.Minute)
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatalf("within jwks_max_stale: %v", err)
	}
	fetches := f.idp.JWKSFetches()
	f.clock.advance(time.Minute)
	_, err := f.verify(f.token(k1, nil))
	if !errors.Is(err, ErrIdPUnavailable) {
		t.Fatalf("past jwks_max_stale: %v, want ErrIdPUnavailable", err)
	}
	waitUntil(t, "a retry", func() bool { return f.idp.JWKSFetches() > fetches })
	f.idp.SetJWKSDown(false)
	f.clock.advance(refresh.MinRefetchInterval)
	waitUntil(t, "recovery", func() bool {
		_, err := f.verify(f.token(k1, nil))
		return err == nil
	})
}

// TestKeySetUnknownKIDFlood: tokens with random kids (signed by any key:
// only the issuer URL is public) cause at most one fetch per
// MinRefetchInterval; the rest are refused without a fetch and counted.
// Issue 22.2: unknown kids triggered unlimited JWKS refetches.
func TestKeySetUnknownKIDFlood(t *testing.T) {
	k1, _ := hostileKeys(t)
	attacker := testenv.NewECSigningKey(t, "x")
	f := newKeySetFixture(t, KeyRefresh{}, nil, k1)
	if _, err := f.verify(f.token(k1, nil)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 300 {
		raw := f.token(attacker, map[string]any{"kid": fmt.Sprintf("random-%d", i)})
		wg.Go(func() {
			if _, err := f.verify(raw); err == nil {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d forged tokens accepted", accepted.Load())
	}
	if n := f.idp.JWKSFetches(); n > 2 {
		t.Errorf("JWKS fetches = %d for 300 unknown kids, want at most 2", n)
	}
	if got := f.refused.Load(); got < 298 {
		t.Errorf("refused refetches counted = %d, want >= 298", got)
	}
	f.clock.advance(DefaultJWKSMinRefetchInterval)
	_, _ = f.verify(f.token(attacker, map[string]any{"kid": "later"}))
	if n := f.idp.JWKSFetches(); n > 3 {
		t.Errorf("JWKS fetches after the interval = %d, want at most 3", n)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeySetRefusesHostileJWKS: redirects, oversized and slow bodies fail
// the fetch; no key from them is ever trusted.
// Issue 12.3: JWKS fetches followed redirects and read unbounded bodies.
func TestKeySetRefusesHostileJWKS(t *testing.T) {
	k1, _ := hostileKeys(t)
	other := testenv.StartHostileIdP(t, k1)
	for _, tc := range []struct {
		name  string
		setup func(h *testenv.HostileIdP)
		want  string
	}{
		{"redirect", func(h *testenv.HostileIdP) { h.RedirectJWKS(other.JWKSURL()) }, "redirect"},
		{"oversized", func(h *testenv.HostileIdP) { h.SetJWKSPadding(8 << 20) }, "larger than"},
		{"slow", func(h *testenv.HostileIdP) { h.SetJWKSDrip(100 * time.Millisecond) }, "/jwks: "},
		{"down", func(h *testenv.HostileIdP) { h.SetJWKSDown(true) }, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newKeySetFixture(t, KeyRefresh{}, &http.Client{Timeout: 500 * time.Millisecond}, k1)
			tc.setup(f.idp)
			_, err := f.verify(f.token(k1, nil))
			if !errors.Is(err, ErrIdPUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrIdPUnavailable mentioning %q", err, tc.want)
			}
		})
	}
}
