package authn

import (
	"bytes"
	"context"
	"log/slog"
	"net/mail"
	"strings"
	"testing"
)

// Issue 12.7: email claims that are not one address reached policy and
// X-Ztp-Email unchanged.
func TestCheckEmail(t *testing.T) {
	for _, tc := range []struct {
		email string
		ok    bool
	}{
		{"alice@corp.test", true},
		{"first.last+tag@sub.corp-1.example", true},
		{"o'brien@corp.test", true},
		{"x@localhost", true},
		{"a@evil.test@corp.test", false},
		{"x@evil.test,y@corp.test", false},
		{"x@evil.test y@corp.test", false},
		{"x@evil.test;y@corp.test", false},
		{"Mallory <m@corp.test>", false},
		{"<m@corp.test>", false},
		{`"a@b"@corp.test`, false},
		{"m@corp.test (comment)", false},
		{"m@[10.0.0.1]", false},
		{"m@corp.test\n", false},
		{"m@corp.test\x00", false},
		{"m\t@corp.test", false},
		{"m@corp.test.", false},
		{".m@corp.test", false},
		{"m..n@corp.test", false},
		{"m@-corp.test", false},
		{"m@corp..test", false},
		{"m@", false},
		{"@corp.test", false},
		{"corp.test", false},
		{"", false},
		{"m@córp.test", false},
		{"m@corp.test\u2028", false},
		{strings.Repeat("a", 65) + "@corp.test", false},
		{"a@" + strings.Repeat("b", 64) + ".test", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), true},  // 254 bytes
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62), false}, // 255 bytes
	} {
		why := checkEmail(tc.email)
		if (why == "") != tc.ok {
			t.Errorf("checkEmail(%q) = %q, want ok=%v", tc.email, why, tc.ok)
		}
	}
}

// TestBadEmailDropped: a bearer token whose email is not one address gets a
// principal without email (and without email_verified), and the drop is
// logged with a reason but without the value.
// Issue 12.7.
func TestBadEmailDropped(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	var logs bytes.Buffer
	v, err := NewBearerVerifier(BearerConfig{
		IdPs:   []IdPConfig{{Name: "test-idp", Issuer: iss.URL(), Audiences: []string{"my-client"}}},
		Now:    newTestClock(testEpoch).Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"a@evil.test@corp.test", "x@evil.test,y@corp.test", "x@evil.test y@corp.test"} {
		p, err := v.Verify(context.Background(), sign(t, key, withClaims(baseClaims(iss.URL()), "email", email)))
		if err != nil {
			t.Fatalf("%q: %v", email, err)
		}
		if p.Email != "" || p.EmailVerified {
			t.Errorf("%q: principal email %q verified %v, want dropped", email, p.Email, p.EmailVerified)
		}
		if strings.Contains(logs.String(), email) {
			t.Errorf("log contains the dropped value: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "email claim dropped") || !strings.Contains(logs.String(), "reason=") {
		t.Errorf("drop not logged with a reason: %s", logs.String())
	}
	p, err := v.Verify(context.Background(), sign(t, key, baseClaims(iss.URL())))
	if err != nil || p.Email != "ada@example.com" || !p.EmailVerified {
		t.Errorf("good email: %+v %v", p, err)
	}
}

// FuzzCheckEmail: whatever checkEmail accepts, Go's RFC 5322 parser reads
// as exactly that one address with no display name, and it has one "@" and
// no whitespace, control, list or quoting character.
func FuzzCheckEmail(f *testing.F) {
	for _, s := range []string{
		"alice@corp.test", "a@evil.test@corp.test", "x@evil.test,y@corp.test", "x@evil.test y@corp.test",
		`"a b"@corp.test`, "Name <a@corp.test>", "a@[127.0.0.1]", "a@corp.test\r\n", "ü@corp.test", "a@b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEmail(s) != "" {
			return
		}
		if strings.Count(s, "@") != 1 || len(s) > maxEmailBytes || strings.ContainsAny(s, " \t\r\n,;<>\"()[]\\:") {
			t.Fatalf("accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", s, s[i])
			}
		}
		addr, err := mail.ParseAddress(s)
		if err != nil || addr.Address != s || addr.Name != "" {
			t.Fatalf("accepted %q, which net/mail reads as %+v (%v)", s, addr, err)
		}
	})
}
