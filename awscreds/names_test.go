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
	for _, tc := range []struct {
		name string
		p    identity.Principal
		want string
	}{
		{"email", identity.Principal{Email: "Jane.Doe+aws@example.com", Subject: "s"}, "Jane.Doe+aws@example.com"},
		{"sub when no email", identity.Principal{Subject: "auth0|12345"}, "auth0-12345"},
		{"reserved prefix", identity.Principal{Email: "AWS:aws:root@example.com"}, "root@example.com"},
		{"non-ascii", identity.Principal{Email: "jürgen@example.com"}, "j-rgen@example.com"},
		{"padded", identity.Principal{Subject: "x"}, "x_"},
		{"service id", identity.Principal{ID: "spiffe://example.org/ns/prod/sa/api"}, "spiffe---example.org-ns-prod-sa-api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := awscreds.SourceIdentity(tc.p); got != tc.want {
				t.Errorf("SourceIdentity = %q, want %q", got, tc.want)
			}
		})
	}
	a := awscreds.SourceIdentity(identity.Principal{Email: long})
	b := awscreds.SourceIdentity(identity.Principal{Email: strings.Repeat("a", 70) + "@example.org"})
	if len(a) != 64 || a == b || a != awscreds.SourceIdentity(identity.Principal{Email: long}) {
		t.Errorf("truncation must be deterministic and keep identities apart: %q %q", a, b)
	}
}

var stsName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func FuzzSourceIdentity(f *testing.F) {
	for _, s := range []string{"", "a", "aws:", "aWs:aws:x", "jane@example.com", strings.Repeat("é", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := awscreds.SourceIdentity(identity.Principal{Email: s})
		if !stsName.MatchString(got) || strings.HasPrefix(strings.ToLower(got), "aws:") {
			t.Fatalf("SourceIdentity(%q) = %q breaks STS rules", s, got)
		}
	})
}
