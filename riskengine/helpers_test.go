package riskengine

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/identity"
)

// fakeStore is an in-memory Store that counts calls and can fail or block.
// It merges observations the way the real stores do (counts add, map
// entries keep the latest time), which the store package tests for real.
type fakeStore struct {
	mu           sync.Mutex
	profiles     map[string]Profile
	flags        map[string]Flag
	observations []Observation

	getProfileCalls, getFlagCalls, applyCalls atomic.Int64

	profileErr, flagErr, applyErr error
	// lateErr, when set, applies a write and then fails it: a timeout
	// the store outlived (issue 14.5).
	lateErr error
	// attempts records every ApplyObservation, failed ones included;
	// lastBatch is the last batch applied per writer and user (the
	// profile item), deduplicated as the DynamoDB store does.
	attempts  []Observation
	lastBatch map[string]int64
	// gate, when set, blocks GetProfile until it is closed; applyGate
	// does the same for ApplyObservation.
	gate, applyGate chan struct{}
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{profiles: map[string]Profile{}, flags: map[string]Flag{}, lastBatch: map[string]int64{}}
}

func (s *fakeStore) GetProfile(ctx context.Context, userID string) (Profile, error) {
	s.getProfileCalls.Add(1)
	s.mu.Lock()
	gate, err := s.gate, s.profileErr
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Profile{}, ctx.Err()
		}
	}
	if err != nil {
		return Profile{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[userID]
	if !ok {
		return Profile{}, ErrNotFound
	}
	p.Networks, p.UserAgents, p.Devices = maps.Clone(p.Networks), maps.Clone(p.UserAgents), maps.Clone(p.Devices)
	return p, nil
}

func (s *fakeStore) ApplyObservation(ctx context.Context, obs Observation) error {
	s.applyCalls.Add(1)
	s.mu.Lock()
	gate := s.applyGate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, obs)
	if s.applyErr != nil {
		return s.applyErr
	}
	if obs.Batch != 0 {
		w := obs.Writer + "\x00" + obs.UserID
		if obs.Batch <= s.lastBatch[w] {
			return nil // a resend of what was applied
		}
		s.lastBatch[w] = obs.Batch
	}
	s.observations = append(s.observations, obs)
	p := s.profiles[obs.UserID]
	p.UserID = obs.UserID
	p.RequestCount += obs.Requests
	p.FailedAuth += obs.FailedAuth
	for i, c := range obs.HourCounts {
		p.HourHistogram[i] += c
	}
	p.Networks = mergeSeenMap(p.Networks, obs.Networks)
	p.UserAgents = mergeSeenMap(p.UserAgents, obs.UserAgents)
	p.Devices = mergeSeenMap(p.Devices, obs.Devices)
	if obs.LastSeen.After(p.LastSeen) {
		p.LastSeen = obs.LastSeen
		if obs.LastLocation != "" {
			p.LastLocation = obs.LastLocation
		}
	}
	if obs.Email != "" {
		p.Email = obs.Email
	}
	p.Version++
	s.profiles[obs.UserID] = p
	return s.lateErr
}

func mergeSeenMap(dst, src map[string]int64) map[string]int64 {
	dst = maps.Clone(dst)
	if dst == nil {
		dst = map[string]int64{}
	}
	for k, v := range src {
		dst[k] = max(dst[k], v)
	}
	return dst
}

func (s *fakeStore) GetFlag(_ context.Context, userID string) (Flag, error) {
	s.getFlagCalls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flagErr != nil {
		return Flag{}, s.flagErr
	}
	f, ok := s.flags[userID]
	if !ok {
		return Flag{}, ErrNotFound
	}
	return f, nil
}

func (s *fakeStore) set(f func(s *fakeStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeStore) obs() []Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Observation(nil), s.observations...)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testNow is a Wednesday, 10:00 UTC: hour of week 82.
var testNow = time.Date(2026, time.March, 4, 10, 0, 0, 0, time.UTC)

const (
	testUser   = "https://idp.example#alice"
	chromeMac  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	firefoxWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
)

// knownProfile is alice's history: her office network, Chrome on macOS,
// laptop dev-1, 100 requests on weekdays 09:00–17:59, last seen in Berlin
// an hour ago.
func knownProfile(now time.Time) Profile {
	seen := now.Add(-24 * time.Hour).Unix()
	p := Profile{
		UserID:       testUser,
		Networks:     map[string]int64{"192.0.2.0/24": seen},
		UserAgents:   map[string]int64{"chrome/macos": seen},
		Devices:      map[string]int64{"dev-1": seen},
		RequestCount: 100,
		LastSeen:     now.Add(-time.Hour),
		LastLocation: encodeLocation(location{lat: 52.52, lon: 13.40, at: now.Add(-time.Hour), ok: true}),
	}
	for day := 1; day <= 5; day++ {
		for hour := 9; hour <= 17; hour++ {
			p.HourHistogram[day*24+hour] = 2.5
		}
	}
	return p
}

// baseRequest is a request from alice that matches her profile.
func baseRequest(now time.Time) *identity.RequestContext {
	return &identity.RequestContext{
		Method: "GET", Host: "app.example", Path: "/", UserAgent: chromeMac,
		ClientIP:  netip.MustParseAddr("192.0.2.10"),
		Principal: identity.Principal{Kind: identity.KindUser, ID: testUser},
		Device:    identity.Device{Present: true, ID: "dev-1"},
		Time:      now,
	}
}

// testGeo places 192.0.2.0/24 in Berlin, 203.0.113.0/24 in New York and
// 198.51.100.0/24 in Potsdam (about 30 km from Berlin).
var testGeo = GeoLookupFunc(func(ip netip.Addr) (float64, float64, bool) {
	switch b := ip.As4(); {
	case b[0] == 192 && b[1] == 0 && b[2] == 2:
		return 52.52, 13.40, true
	case b[0] == 203 && b[1] == 0 && b[2] == 113:
		return 40.71, -74.01, true
	case b[0] == 198 && b[1] == 51 && b[2] == 100:
		return 52.39, 13.06, true
	}
	return 0, 0, false
})

// newTestEngine builds an engine over st with a fixed clock and a flush
// interval long enough that only explicit Flush calls write.
func newTestEngine(t testing.TB, st *fakeStore, clock *fakeClock, mutate func(*Config)) *Engine {
	t.Helper()
	cfg := Config{Store: st, Now: clock.Now, FlushInterval: time.Hour, GeoIP: testGeo}
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// codes lists the reason codes of r in order.
func codes(r identity.Risk) []string {
	var out []string
	for _, reason := range r.Reasons {
		out = append(out, reason.Code)
	}
	return out
}

// waitFor polls cond until it holds or a second has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errBoom = errors.New("boom: store is down")
