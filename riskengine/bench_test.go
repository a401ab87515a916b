package riskengine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkScoreCached is the hot path: a known user with a cached profile
// and flag, GeoIP on, and one reason (a watch flag) so that the reasons
// slice is built. Target: ≤ 3 µs/op and ≤ 10 allocs/op.
func BenchmarkScoreCached(b *testing.B) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	st.flags[testUser] = Flag{UserID: testUser, Level: FlagWatch}
	e := newTestEngine(b, st, &fakeClock{t: testNow}, func(c *Config) { c.VelocityFloor = 1 << 30 })
	rc := baseRequest(testNow)
	ctx := context.Background()
	if _, err := e.Score(ctx, rc); err != nil {
		b.Fatal(err)
	}
	rc.Time = time.Time{} // use the engine clock
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Score(ctx, rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreCachedParallel is the same without the flag, with every
// goroutine on its own user.
func BenchmarkScoreCachedParallel(b *testing.B) {
	st := newFakeStore()
	e := newTestEngine(b, st, &fakeClock{t: testNow}, func(c *Config) { c.VelocityFloor = 1 << 30 })
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rc := baseRequest(testNow)
		rc.Principal.ID = fmt.Sprintf("%s-%d", testUser, next.Add(1))
		p := knownProfile(testNow)
		p.UserID = rc.Principal.ID
		st.set(func(s *fakeStore) { s.profiles[p.UserID] = p })
		if _, err := e.Score(ctx, rc); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if _, err := e.Score(ctx, rc); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestScoreCachedAllocs holds the allocation budget in the normal test run.
func TestScoreCachedAllocs(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	st.flags[testUser] = Flag{UserID: testUser, Level: FlagWatch}
	e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) { c.VelocityFloor = 1 << 30 })
	rc := baseRequest(testNow)
	if _, err := e.Score(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = e.Score(context.Background(), rc) }); n > 10 {
		t.Errorf("cached Score allocates %v times per op, budget 10", n)
	}
}
