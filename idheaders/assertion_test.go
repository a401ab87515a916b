package idheaders

import (
	"fmt"
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
