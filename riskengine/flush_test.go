package riskengine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// TestWriteBehindOneCallPerUser: 1000 requests within one flush interval
// become exactly one ApplyObservation carrying all of them.
func TestWriteBehindOneCallPerUser(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	for i := range 1000 {
		rc := baseRequest(testNow.Add(time.Duration(i) * 5 * time.Millisecond))
		if _, err := e.Score(context.Background(), rc); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.applyCalls.Load(); n != 0 {
		t.Fatalf("%d writes before the flush; the hot path must not write", n)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs := st.obs()
	if len(obs) != 1 {
		t.Fatalf("%d ApplyObservation calls, want 1", len(obs))
	}
	got := obs[0]
	if got.UserID != testUser || got.Requests != 1000 {
		t.Errorf("observation user %q requests %d, want %q 1000", got.UserID, got.Requests, testUser)
	}
	// The first 60 requests were low risk and taught the profile; the rest
	// of the burst scored velocity (medium) and taught nothing.
	want := map[string]int64{"192.0.2.0/24": testNow.Add(295 * time.Millisecond).Unix()}
	if diff := cmp.Diff(want, got.Networks); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	if got.HourCounts[82] <= 0 || !got.LastSeen.Equal(testNow.Add(4995*time.Millisecond)) {
		t.Errorf("hour 82 = %v, last seen %v", got.HourCounts[82], got.LastSeen)
	}
	if err := e.Flush(context.Background()); err != nil || st.applyCalls.Load() != 1 {
		t.Errorf("a flush with nothing pending wrote: %v, %d calls", err, st.applyCalls.Load())
	}
}

// TestWriteBehindTicker: the background loop flushes every FlushInterval.
func TestWriteBehindTicker(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) { c.FlushInterval = 10 * time.Millisecond })
	if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a background flush", func() bool { return st.applyCalls.Load() == 1 })
}

// TestCloseFlushes: Close writes what is pending, so SIGTERM loses
// nothing, including failed authentications.
func TestCloseFlushes(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
	for range 3 {
		if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
			t.Fatal(err)
		}
	}
	e.RecordFailedAuth("https://idp.example#bob")
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for _, o := range st.obs() {
		got[o.UserID] = [2]int64{o.Requests, o.FailedAuth}
	}
	want := map[string][2]int64{testUser: {3, 0}, "https://idp.example#bob": {0, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flushed on Close (-want +got):\n%s", diff)
	}
}

// TestFlushFailureKeepsPending: a failed write is resent as it was, under
// the same batch number, and what came in meanwhile follows as the next
// batch in the same flush.
func TestFlushFailureKeepsPending(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
	score := func() {
		if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
			t.Fatal(err)
		}
	}
	score()
	score()
	st.set(func(s *fakeStore) { s.applyErr = errBoom })
	if err := e.Flush(context.Background()); !errors.Is(err, errBoom) {
		t.Fatalf("Flush = %v, want the store error", err)
	}
	score()
	st.set(func(s *fakeStore) { s.applyErr = nil })
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs := st.obs()
	if len(obs) != 2 || obs[0].Requests != 2 || obs[1].Requests != 1 {
		t.Fatalf("observations %+v, want the resent batch of 2 then 1", obs)
	}
	if obs[0].Batch != st.attempts[0].Batch || obs[0].Writer != st.attempts[0].Writer || obs[1].Batch <= obs[0].Batch {
		t.Errorf("batches: failed %d, resent %d, next %d", st.attempts[0].Batch, obs[0].Batch, obs[1].Batch)
	}
}

// TestFlushTimeoutAppliedLate (issue 14.5): a write the store applied but
// answered too late is resent with its batch number, not merged into a
// new batch the store would count again.
func TestFlushTimeoutAppliedLate(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
	score := func(n int) {
		for range n {
			if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := knownProfile(testNow).RequestCount
	score(5)
	st.set(func(s *fakeStore) { s.lateErr = context.DeadlineExceeded })
	if err := e.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the timeout")
	}
	score(7)
	st.set(func(s *fakeStore) { s.lateErr = nil })
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.profiles[testUser].RequestCount - base; got != 12 {
		t.Fatalf("stored %d requests, want 12", got)
	}
}

// TestStoreOutage covers every OnStoreError mode: a result with a level and
// reason risk_unavailable, never a silent 0, and always the error.
func TestStoreOutage(t *testing.T) {
	unavailable := func(points int) identity.RiskReason {
		return identity.RiskReason{Code: ReasonRiskUnavailable, Points: points}
	}
	tests := []struct {
		name      string
		mode      OnStoreError
		cached    bool // a successful Score, then Invalidate, before the outage
		flagOnly  bool // only the flag read fails
		wantLevel identity.RiskLevel
		wantScore int
		want      []identity.RiskReason
	}{
		{"step_up cold", StoreErrorStepUp, false, false, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"default is step_up", "", false, false, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"deny cold", StoreErrorDeny, false, false, identity.RiskHigh, 70, []identity.RiskReason{unavailable(70)}},
		{"allow_cached without cache steps up", StoreErrorAllowCached, false, false, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"allow_cached with cache", StoreErrorAllowCached, true, false, identity.RiskLow, 0, []identity.RiskReason{unavailable(0)}},
		{"step_up ignores cache", StoreErrorStepUp, true, false, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"flag read fails, nothing cached", StoreErrorStepUp, false, true, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"flag read fails, allow_cached has no cached flag", StoreErrorAllowCached, false, true, identity.RiskMedium, 30, []identity.RiskReason{unavailable(30)}},
		{"deny keeps the reasons it has", StoreErrorDeny, false, true, identity.RiskHigh, 70, []identity.RiskReason{unavailable(45), {Code: ReasonNewNetwork, Points: 25}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.profiles[testUser] = knownProfile(testNow)
			e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) { c.OnStoreError = tt.mode })
			if tt.cached {
				if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
					t.Fatal(err)
				}
				e.Invalidate(testUser)
			}
			st.set(func(s *fakeStore) {
				s.flagErr = errBoom
				if !tt.flagOnly {
					s.profileErr = errBoom
				}
			})
			rc := baseRequest(testNow)
			if tt.name == "deny keeps the reasons it has" {
				rc.ClientIP = netip.MustParseAddr("198.51.100.7")
			}
			got, err := e.Score(context.Background(), rc)
			if !errors.Is(err, errBoom) {
				t.Errorf("err = %v, want it to wrap the store error", err)
			}
			if got.Level != tt.wantLevel || got.Score != tt.wantScore {
				t.Errorf("got %d %s, want %d %s", got.Score, got.Level, tt.wantScore, tt.wantLevel)
			}
			if diff := cmp.Diff(tt.want, got.Reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOutageServesStale: with a cached profile a failing background
// refresh is invisible to requests, and recovery is picked up.
func TestOutageServesStale(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	var mu sync.Mutex
	var storeErrs int
	e := newTestEngine(t, st, clock, func(c *Config) {
		c.OnStoreCall = func(op string, _ time.Duration, err error) {
			if err != nil {
				mu.Lock()
				storeErrs++
				mu.Unlock()
			}
		}
	})
	if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
		t.Fatal(err)
	}
	st.set(func(s *fakeStore) { s.profileErr, s.flagErr = errBoom, errBoom })
	clock.Advance(2 * time.Minute)
	got, err := e.Score(context.Background(), baseRequest(clock.Now()))
	if err != nil || got.Level != identity.RiskLow {
		t.Errorf("stale cache during outage: %+v, %v", got, err)
	}
	waitFor(t, "the failed refreshes", func() bool { mu.Lock(); defer mu.Unlock(); return storeErrs == 2 })
	st.set(func(s *fakeStore) { s.profileErr, s.flagErr = nil, nil })
	clock.Advance(refreshRetry)
	before := st.getProfileCalls.Load()
	if _, err := e.Score(context.Background(), baseRequest(clock.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a retry after the backoff", func() bool { return st.getProfileCalls.Load() > before })
}

// TestEviction: idle users are forgotten; a later request reloads them.
func TestEviction(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	e.evictIdle(clock.Now())
	if e.users.peek(testUser) == nil {
		t.Fatal("a user with pending observations was forgotten before its flush")
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.evictIdle(clock.Now())
	if e.users.peek(testUser) != nil {
		t.Fatal("an idle, flushed user was kept")
	}
	if _, err := e.Score(context.Background(), baseRequest(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if n := st.getProfileCalls.Load(); n != 2 {
		t.Errorf("GetProfile calls = %d, want 2", n)
	}
}

// TestConcurrentUse exercises Score, Flush, Invalidate and RecordFailedAuth
// together under the race detector; no request may be lost.
func TestConcurrentUse(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
					t.Error(err)
					return
				}
				switch {
				case w == 0 && i%20 == 0:
					_ = e.Flush(context.Background())
				case w == 1 && i%50 == 0:
					e.Invalidate(testUser)
				case w == 2 && i%10 == 0:
					e.RecordFailedAuth(testUser)
				}
			}
		})
	}
	wg.Wait()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var requests, failed int64
	for _, o := range st.obs() {
		requests += o.Requests
		failed += o.FailedAuth
	}
	if requests != 1600 || failed != 20 {
		t.Errorf("flushed %d requests and %d failed auths, want 1600 and 20", requests, failed)
	}
}

// TestEmailWrittenWhenItChanges: issue 15.14, the verified email address
// reaches the profile (for operators to name the user by) in the first
// observation that sees it and again only when it changes; an unverified
// address never does.
func TestEmailWrittenWhenItChanges(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	score := func(email string, verified bool) {
		t.Helper()
		rc := baseRequest(clock.Now())
		rc.Principal.Email, rc.Principal.EmailVerified = email, verified
		if _, err := e.Score(context.Background(), rc); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	score("mallory@example.com", false)
	score("alice@example.com", true)
	score("alice@example.com", true)
	score("alice@corp.example", true)
	var emails []string
	for _, o := range st.obs() {
		emails = append(emails, o.Email)
	}
	if diff := cmp.Diff([]string{"", "alice@example.com", "", "alice@corp.example"}, emails); diff != "" {
		t.Errorf("emails per observation (-want +got):\n%s", diff)
	}
	if p := st.profiles[testUser]; p.Email != "alice@corp.example" {
		t.Errorf("profile email %q", p.Email)
	}
}
