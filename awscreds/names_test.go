package awscreds_test

import (
	"regexp"
	"strings"
	"testing"

	"ztproxy/awscreds"
	"ztproxy/identity"
)

func TestSourceIdentity(t *testing.T) {
	long := strings.Repeat("a", 70) + "@example.com"
	hashed := regexp.MustCompile(`-[0-9a-f]{8}$`)
	for _, tc := range []struct {
		name string
		p    identity.Principal
		want string // a trailing "-#" stands for "-" and 8 hex digits
	}{
		{"verified email", identity.Principal{Email: "Jane.Doe+aws@example.com", EmailVerified: true, Subject: "sub-1"}, "Jane.Doe+aws@example.com"},
		// Issue 14.4: an unverified email is not an identity to attribute to.
		{"unverified email", identity.Principal{Email: "alice@example.com", Subject: "sub-1"}, "sub-1"},
		{"sub when no email", identity.Principal{Subject: "auth0|12345"}, "auth0-12345-#"},
		{"reserved prefix", identity.Principal{Email: "AWS:aws:root@example.com", EmailVerified: true}, "root@example.com-#"},
		{"non-ascii", identity.Principal{Email: "jürgen@example.com", EmailVerified: true}, "j-rgen@example.com-#"},
		{"short", identity.Principal{Subject: "x"}, "x-#"},
		{"service id", identity.Principal{ID: "spiffe://example.org/ns/prod/sa/api"}, "spiffe---example.org-ns-prod-sa-api-#"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := awscreds.SourceIdentity(tc.p)
			if prefix, ok := strings.CutSuffix(tc.want, "-#"); ok {
				if !strings.HasPrefix(got, prefix) || !hashed.MatchString(got) || len(got) != len(prefix)+9 {
					t.Errorf("SourceIdentity = %q, want %q plus a hash suffix", got, prefix)
				}
			} else if got != tc.want {
				t.Errorf("SourceIdentity = %q, want %q", got, tc.want)
			}
		})
	}
	a := awscreds.SourceIdentity(identity.Principal{Email: long, EmailVerified: true})
	b := awscreds.SourceIdentity(identity.Principal{Email: strings.Repeat("a", 70) + "@example.org", EmailVerified: true})
	if len(a) != 64 || a == b || a != awscreds.SourceIdentity(identity.Principal{Email: long, EmailVerified: true}) {
		t.Errorf("truncation must be deterministic and keep identities apart: %q %q", a, b)
	}
	// Issue 14.4: a rewritten value never equals another user's exact one,
	// since policies compare ${aws:SourceIdentity} literally.
	real := awscreds.SourceIdentity(identity.Principal{Email: "a-b@example.com", EmailVerified: true})
	forged := awscreds.SourceIdentity(identity.Principal{Email: "a*b@example.com", EmailVerified: true})
	if real != "a-b@example.com" || forged == real {
		t.Errorf("sanitising collided: %q and %q", real, forged)
	}
}

var stsName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func FuzzSourceIdentity(f *testing.F) {
	for _, s := range []string{"", "a", "aws:", "aWs:aws:x", "jane@example.com", strings.Repeat("é", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := awscreds.SourceIdentity(identity.Principal{Email: s, EmailVerified: true, Subject: "fallback"})
		if !stsName.MatchString(got) || strings.HasPrefix(strings.ToLower(got), "aws:") {
			t.Fatalf("SourceIdentity(%q) = %q breaks STS rules", s, got)
		}
		// Either the value itself or a rewritten one marked with a hash,
		// which an exact value of the same shape cannot carry by accident.
		if s != "" && got != s && !regexp.MustCompile(`-[0-9a-f]{8}$`).MatchString(got) {
			t.Fatalf("SourceIdentity(%q) = %q rewritten without the hash suffix", s, got)
		}
	})
}
