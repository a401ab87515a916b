package riskengine

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"ztproxy/identity"
)

// TestCacheHit: the second Score of a known user does not call the store.
func TestCacheHit(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	var hits []bool
	e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) {
		c.OnCache = func(hit bool) { hits = append(hits, hit) }
	})
	for range 3 {
		if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
			t.Fatal(err)
		}
	}
	if p, f := st.getProfileCalls.Load(), st.getFlagCalls.Load(); p != 1 || f != 1 {
		t.Errorf("store reads: %d profile, %d flag; want 1 and 1", p, f)
	}
	if want := []bool{false, true, true}; !slices.Equal(hits, want) {
		t.Errorf("OnCache hits = %v, want %v", hits, want)
	}
}

// TestSingleflight: 50 concurrent first requests share one profile read.
func TestSingleflight(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	st.gate = make(chan struct{})
	e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
				errs <- err
			}
		})
	}
	waitFor(t, "the first read", func() bool { return st.getProfileCalls.Load() >= 1 })
	time.Sleep(20 * time.Millisecond) // let the others queue behind it
	close(st.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := st.getProfileCalls.Load(); n != 1 {
		t.Errorf("GetProfile called %d times, want 1", n)
	}
	if n := st.getFlagCalls.Load(); n != 1 {
		t.Errorf("GetFlag called %d times, want 1", n)
	}
}

// TestBackgroundRefresh: after ProfileTTL the stale profile is served
// without waiting while one background read refreshes it.
func TestBackgroundRefresh(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	var hits []bool
	var mu sync.Mutex
	e := newTestEngine(t, st, clock, func(c *Config) {
		c.OnCache = func(hit bool) { mu.Lock(); hits = append(hits, hit); mu.Unlock() }
	})
	if _, err := e.Score(context.Background(), baseRequest(testNow)); err != nil {
		t.Fatal(err)
	}
	st.set(func(s *fakeStore) {
		p := s.profiles[testUser]
		p.Networks["198.51.100.0/24"] = testNow.Unix()
		s.profiles[testUser] = p
		s.gate = make(chan struct{}) // the refresh will hang until released
	})
	clock.Advance(61 * time.Second)
	for range 3 { // stale served while the refresh hangs; only one refresh starts
		if _, err := e.Score(context.Background(), baseRequest(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the refresh to start", func() bool { return st.getProfileCalls.Load() >= 2 })
	for range 3 {
		if _, err := e.Score(context.Background(), baseRequest(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.getProfileCalls.Load(); n != 2 {
		t.Errorf("GetProfile called %d times, want 2 (initial + one refresh)", n)
	}
	close(st.gate)
	waitFor(t, "the refreshed profile", func() bool {
		r := baseRequest(clock.Now())
		r.ClientIP = mustAddr("198.51.100.7")
		got, _ := e.Score(context.Background(), r)
		return !slices.Contains(codes(got), ReasonNewNetwork)
	})
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(hits[1:], false) {
		t.Errorf("a request waited on the store after the first: %v", hits)
	}
}

// TestFlagCache: a flag set in the store raises the score once the cached
// "no flag" expires (FlagTTL), and at once after Invalidate.
func TestFlagCache(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	score := func() identity.Risk {
		t.Helper()
		got, err := e.Score(context.Background(), baseRequest(clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := score(); got.Level != identity.RiskLow {
		t.Fatalf("before the flag: %+v", got)
	}
	st.set(func(s *fakeStore) { s.flags[testUser] = Flag{UserID: testUser, Level: FlagCompromised} })
	clock.Advance(29 * time.Second)
	if got := score(); got.Level != identity.RiskLow {
		t.Errorf("within FlagTTL the cached flag should hold: %+v", got)
	}
	clock.Advance(2 * time.Second)
	waitFor(t, "the flag to take effect", func() bool { return score().Level == identity.RiskHigh })
	if got := score(); !slices.Contains(codes(got), ReasonFlagCompromised) {
		t.Errorf("reasons = %v", codes(got))
	}

	// Cleared by the operator on this replica: Invalidate makes it immediate.
	st.set(func(s *fakeStore) { delete(s.flags, testUser) })
	e.Invalidate(testUser)
	if got := score(); got.Level != identity.RiskLow {
		t.Errorf("after clear + Invalidate: %+v", got)
	}
}

// TestWriteBehindVisible: what a request taught the profile stays visible
// through a flush and a refresh.
func TestWriteBehindVisible(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	rc := baseRequest(testNow)
	rc.ClientIP = mustAddr("198.51.100.7")
	check := func(step string) {
		t.Helper()
		got, err := e.Score(context.Background(), rc)
		if err != nil || slices.Contains(codes(got), ReasonNewNetwork) {
			t.Errorf("%s: %+v, %v; the network should be known", step, got, err)
		}
	}
	if _, err := e.Score(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	check("pending")
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	clock.Advance(61 * time.Second)
	check("stale")
	waitFor(t, "refresh", func() bool { return st.getProfileCalls.Load() == 2 })
	check("refreshed")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
