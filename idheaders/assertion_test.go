package idheaders

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"ztproxy/identity"
)

// Issue 23: a full assertion cache emptied itself, so every active caller
// needed a new ECDSA signature at once. Now the least recently used entry
// goes: an assertion in use stays cached however many others arrive.
func TestAssertionCacheKeepsRecentWhenFull(t *testing.T) {
	s, err := NewSigner(nil)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64
	if err := s.SetCacheSize(size); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rc := func(user string) *identity.RequestContext {
		return &identity.RequestContext{Route: "app", Principal: identity.Principal{Kind: identity.KindUser, ID: user}}
	}
	hot, err := s.Assertion("https://proxy", rc("hot"), time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * size {
		if _, err := s.Assertion("https://proxy", rc(fmt.Sprintf("user-%d", i)), time.Minute, now); err != nil {
			t.Fatal(err)
		}
		again, err := s.Assertion("https://proxy", rc("hot"), time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		if again != hot {
			t.Fatalf("the assertion in use was re-signed after %d other users", i+1)
		}
	}
	s.mu.Lock()
	n := s.cache.Len()
	s.mu.Unlock()
	if n != size {
		t.Errorf("cache holds %d assertions, want %d", n, size)
	}
	if err := s.SetCacheSize(0); err == nil {
		t.Error("a cache size of 0 was accepted")
	}
}

// BenchmarkAssertionCacheMemory reports the heap each cached assertion
// costs (the figure config.example.yaml gives for caches.assertions).
func BenchmarkAssertionCacheMemory(b *testing.B) {
	const n = 5000
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for b.Loop() {
		s, err := NewSigner(nil)
		if err != nil {
			b.Fatal(err)
		}
		before := heapAlloc()
		for i := range n {
			rc := &identity.RequestContext{Route: "app", Principal: identity.Principal{Kind: identity.KindUser,
				ID: fmt.Sprintf("https://idp.example.com#user-%d", i), Email: fmt.Sprintf("user-%d@example.com", i),
				Groups: []string{"staff", "engineering"}, IdP: "corp", SessionID: fmt.Sprintf("session-%d", i)}}
			if _, err := s.Assertion("https://proxy.example.com", rc, time.Minute, now); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heapAlloc()-before)/n, "B/assertion")
		runtime.KeepAlive(s)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
