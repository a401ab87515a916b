package awscreds_test

import (
	"testing"

	"ztproxy/awscreds"
)

// Issue 23: the credentials cache held one entry per user, role and
// inputs for as long as the credentials lived, with no count bound, and
// every mint scanned it for expired entries. It is now an LRU bounded by
// Config.CacheSize (aws.cache_size): the credentials in use stay cached,
// the least recently used go.
func TestCredentialsCacheBoundedLRU(t *testing.T) {
	e := newEnv(t, func(c *awscreds.Config) { c.CacheSize = 2 })
	req := func(name string) awscreds.Request {
		return awscreds.Request{Role: "analyst", Principal: user(name), RiskLevel: "low", Route: "data"}
	}
	e.get(t, req("alice"))
	e.get(t, req("bob"))
	e.get(t, req("alice")) // hit: alice is now the most recently used
	e.get(t, req("carol")) // evicts bob
	calls := e.sts.Calls("AssumeRole")
	e.get(t, req("alice"))
	e.get(t, req("carol"))
	if n := e.sts.Calls("AssumeRole") - calls; n != 0 {
		t.Errorf("%d STS calls for the two most recently used users, want 0 (cached)", n)
	}
	e.get(t, req("bob"))
	if n := e.sts.Calls("AssumeRole") - calls; n != 1 {
		t.Errorf("%d STS calls for the evicted user, want 1", n)
	}
}
