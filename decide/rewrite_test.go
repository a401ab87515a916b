package decide

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPathRewrite(t *testing.T) {
	re, err := CompileRegexRewrite(`^/api/users/([0-9]+)(/.*)?$`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rw           PathRewrite
		prefix, p    string
		want         string
		wantRejected bool
	}{
		{PathRewrite{Prefix: "/v2"}, "/api", "/api/x/y", "/v2/x/y", false},
		{PathRewrite{Prefix: "/"}, "/api", "/api", "/", false},
		{PathRewrite{Prefix: "/v2/"}, "/", "/x", "/v2/x", false},
		{PathRewrite{Prefix: "/v2"}, "/api", "/api;jsessionid=1/x", "/v2/x", false},
		{PathRewrite{Regex: re, Substitution: "/u/$1$2"}, "/", "/api/users/7/photo", "/u/7/photo", false},
		{PathRewrite{Regex: re, Substitution: "/u/$1/..$2"}, "/", "/api/users/7/photo", "", true},
		{PathRewrite{Regex: re, Substitution: "u/$1"}, "/", "/api/users/7", "", true},
		{PathRewrite{Regex: re, Substitution: "/u//$1"}, "/", "/api/users/7", "", true},
		{PathRewrite{Regex: re, Substitution: "/u/%2e%2e/$1"}, "/", "/api/users/7", "", true},
	} {
		got, err := tc.rw.Rewrite(tc.p, tc.prefix)
		if tc.wantRejected {
			if err == nil {
				t.Errorf("%+v on %q: %q, want refused", tc.rw, tc.p, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v on %q: %q %v, want %q", tc.rw, tc.p, got, err, tc.want)
		}
	}
	if _, err := CompileRegexRewrite(`(a`); err == nil {
		t.Error("invalid pattern compiled")
	}
	if _, err := CompileRegexRewrite(`(a)\1`); err == nil {
		t.Error("a backreference (not RE2) compiled")
	}
	// Issue 18: a pattern whose program would make every request slow.
	if _, err := CompileRegexRewrite(strings.Repeat(`a{0,1000}`, 20)); err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("a huge counted repetition: %v, want too complex", err)
	}
	if _, err := CompileRegexRewrite(`^/api/v[0-9]{1,3}/users/([^/]{1,64})(/.*)?$`); err != nil {
		t.Errorf("an ordinary pattern: %v", err)
	}
}

// FuzzRegexRewrite: issue 18, a regex rewrite never forwards a path the
// upstream could read differently from how the proxy checked it: every
// accepted result is a clean path that the proxy's own request-path
// parser reads back unchanged.
func FuzzRegexRewrite(f *testing.F) {
	f.Add(`^/api/(.*)$`, "/$1", "/api/x/y")
	f.Add(`^/a/([^/]+)/b$`, "/b/$1/../c", "/a/x/b")
	f.Add(`x`, "%2f", "/x")
	f.Add(`/`, "//", "/a/b")
	f.Add(`(?i)API`, "\\", "/api")
	f.Add(`^(.*)$`, "$1;x/..", "/p")
	f.Fuzz(func(t *testing.T, pattern, sub, path string) {
		re, err := CompileRegexRewrite(pattern)
		if err != nil {
			return
		}
		rp, err := ParseRequestPath(path)
		if err != nil {
			return
		}
		rw := PathRewrite{Regex: re, Substitution: sub}
		out, err := rw.Rewrite(rp.Forward, "/")
		if err != nil {
			return
		}
		if !CheckForwardPath(out) {
			t.Fatalf("accepted an unclean path %q", out)
		}
		// What the upstream receives: the path escaped by net/url.
		escaped := (&url.URL{Path: out}).EscapedPath()
		back, err := ParseRequestPath(escaped)
		if err != nil {
			t.Fatalf("rewritten %q (sent as %q) does not parse: %v", out, escaped, err)
		}
		if back.Forward != out {
			t.Fatalf("rewritten %q reads back as %q", out, back.Forward)
		}
	})
}

// Issue 18 (limits): the limiter map stays bounded however many
// principals call, and a dropped bucket only ever means a fresh one.
func TestLimitersBounded(t *testing.T) {
	l := newLimiters(&RateLimit{RequestsPerSecond: 1, Burst: 1, MaxPrincipals: 64})
	now := time.Unix(1_000_000, 0)
	for i := range 10_000 {
		l.allow(string(rune('a'+i%26))+time.Duration(i).String(), now)
		if n := l.size(); n > 64 {
			t.Fatalf("after %d principals the map holds %d > 64", i+1, n)
		}
	}
	// A principal over its rate stays limited while the map is not full.
	l = newLimiters(&RateLimit{RequestsPerSecond: 1, Burst: 1, MaxPrincipals: 64})
	if ok, _ := l.allow("alice", now); !ok {
		t.Fatal("first request refused")
	}
	ok, wait := l.allow("alice", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("second request at once: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.allow("alice", now.Add(time.Second)); !ok {
		t.Fatal("refused after the refill")
	}
}
