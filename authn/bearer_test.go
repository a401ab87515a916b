package authn

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// newTestVerifier returns a verifier for one IdP served by iss, with the
// given clock; mutate adjusts the IdP config.
func newTestVerifier(t testing.TB, iss *testIssuer, clock *testClock, mutate func(*IdPConfig)) *BearerVerifier {
	t.Helper()
	idp := IdPConfig{Name: "test-idp", Issuer: iss.URL(), Audiences: []string{"my-client", "other-client"}}
	if mutate != nil {
		mutate(&idp)
	}
	v, err := NewBearerVerifier(BearerConfig{
		IdPs:   []IdPConfig{idp},
		Now:    clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("NewBearerVerifier: %v", err)
	}
	return v
}

// wantBearerError fails unless err is a *BearerError with code and a
// description containing desc, and its text does not leak the token.
func wantBearerError(t *testing.T, err error, code, desc, raw string) *BearerError {
	t.Helper()
	var be *BearerError
	if !errors.As(err, &be) {
		t.Fatalf("error = %v (%T), want *BearerError", err, err)
	}
	if be.Code != code || !strings.Contains(be.Description, desc) {
		t.Errorf("error = %q/%q, want %q/%q", be.Code, be.Description, code, desc)
	}
	if parts := strings.Split(raw, "."); len(parts) == 3 && parts[2] != "" && strings.Contains(err.Error(), parts[2]) {
		t.Errorf("error text contains the token signature: %v", err)
	}
	if raw != "" && strings.Contains(err.Error(), raw) {
		t.Errorf("error text contains the token: %v", err)
	}
	return be
}

func TestVerifyValidToken(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, func(c *IdPConfig) { c.ClaimsToExpose = []string{"department", "level", "missing"} })

	raw := sign(t, key, withClaims(baseClaims(iss.URL()),
		"aud", []string{"someone-else", "other-client"},
		"groups", []string{"admins", "devs"},
		"amr", []string{"pwd", "mfa"},
		"acr", "urn:mfa",
		"auth_time", testEpoch.Add(-time.Minute).Unix(),
		"name", "Ada Lovelace",
		"department", "R&D",
		"level", 7,
	))
	got, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := identity.Principal{
		Kind:          identity.KindUser,
		ID:            iss.URL() + "#user-123",
		Issuer:        iss.URL(),
		Subject:       "user-123",
		Email:         "ada@example.com",
		EmailVerified: true,
		Name:          "Ada Lovelace",
		Groups:        []string{"admins", "devs"},
		Claims:        map[string]string{"department": "R&D", "level": "7"},
		AuthKind:      identity.AuthBearer,
		AMR:           []string{"pwd", "mfa"},
		ACR:           "urn:mfa",
		AuthTime:      testEpoch.Add(-time.Minute),
		Expiry:        testEpoch.Add(time.Hour),
		IdP:           "test-idp",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("principal mismatch (-want +got):\n%s", diff)
	}
	if !got.HasMFA() {
		t.Error("HasMFA() = false, want true")
	}
}

func TestVerifyES256(t *testing.T) {
	key := ecKey(t, "ec1")
	iss := newTestIssuer(t, key)
	v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
	if _, err := v.Verify(context.Background(), sign(t, key, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify ES256: %v", err)
	}
	only := newTestVerifier(t, iss, newTestClock(testEpoch), func(c *IdPConfig) { c.AllowedAlgs = []string{"RS256"} })
	raw := sign(t, key, baseClaims(iss.URL()))
	_, err := only.Verify(context.Background(), raw)
	wantBearerError(t, err, CodeInvalidToken, "token is invalid", raw)
}

func TestVerifyRejects(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	base := baseClaims(iss.URL())

	// HS256 "signed" with the issuer's public key: the classic
	// algorithm-confusion attack (CVE-2015-9235 and friends).
	pubDER, err := x509.MarshalPKIXPublicKey(key.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacKey := testKey{kid: "k1", alg: jose.HS256, priv: pubPEM}

	tests := []struct {
		name string
		raw  string
		code string
		desc string
	}{
		{"alg none", unsignedToken(t, base), CodeInvalidToken, "token is invalid"},
		{"HS256 with RSA public key", sign(t, hmacKey, base), CodeInvalidToken, "token is invalid"},
		{"wrong audience", sign(t, key, withClaims(base, "aud", "not-mine")), CodeInvalidToken, "not accepted"},
		{"empty audience list", sign(t, key, withClaims(base, "aud", []string{})), CodeInvalidToken, "not accepted"},
		{"no audience", sign(t, key, withClaims(base, "aud", nil)), CodeInvalidToken, "not accepted"},
		{"unknown issuer", sign(t, key, withClaims(base, "iss", "https://evil.example")), CodeInvalidToken, "untrusted issuer"},
		{"issuer with trailing slash", sign(t, key, withClaims(base, "iss", iss.URL()+"/")), CodeInvalidToken, "untrusted issuer"},
		{"signed by another issuer's key with our iss", sign(t, rsaKey(t, 1, "k1"), base), CodeInvalidToken, "token is invalid"},
		{"expired", sign(t, key, withClaims(base, "exp", testEpoch.Add(-time.Second).Unix())), CodeInvalidToken, "expired"},
		{"no exp", sign(t, key, withClaims(base, "exp", nil)), CodeInvalidToken, "expired"},
		{"nbf in future", sign(t, key, withClaims(base, "nbf", testEpoch.Add(10*time.Minute).Unix())), CodeInvalidToken, "token is invalid"},
		{"no sub", sign(t, key, withClaims(base, "sub", nil)), CodeInvalidToken, "not accepted"},
		{"groups of wrong type", sign(t, key, withClaims(base, "groups", 42)), CodeInvalidToken, "not accepted"},
		{"not a JWT", "abc", CodeInvalidToken, "malformed"},
		{"JWE shape", "a.b.c.d.e", CodeInvalidToken, "malformed"},
		{"payload not JSON", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", CodeInvalidToken, "malformed"},
		{"too large", strings.Repeat("a", maxBearerTokenBytes+1), CodeInvalidToken, "too large"},
		{"empty", "", CodeInvalidRequest, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
			_, err := v.Verify(context.Background(), tt.raw)
			wantBearerError(t, err, tt.code, tt.desc, tt.raw)
		})
	}
}

// TestVerifyIssuerPicksVerifierOnly checks that the unverified iss is only a
// hint: a token claiming IdP B's issuer but signed by IdP A fails B's
// signature check.
func TestVerifyIssuerPicksVerifierOnly(t *testing.T) {
	keyA, keyB := rsaKey(t, 0, "shared-kid"), rsaKey(t, 1, "shared-kid")
	a, b := newTestIssuer(t, keyA), newTestIssuer(t, keyB)
	v, err := NewBearerVerifier(BearerConfig{
		IdPs: []IdPConfig{
			{Name: "a", Issuer: a.URL(), Audiences: []string{"my-client"}},
			{Name: "b", Issuer: b.URL(), Audiences: []string{"my-client"}},
		},
		Now: newTestClock(testEpoch).Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := v.Verify(ctx, sign(t, keyB, baseClaims(b.URL())))
	if err != nil || p.IdP != "b" {
		t.Fatalf("token of b: principal IdP %q, err %v", p.IdP, err)
	}
	forged := sign(t, keyA, baseClaims(b.URL()))
	_, err = v.Verify(ctx, forged)
	wantBearerError(t, err, CodeInvalidToken, "token is invalid", forged)
}

func TestVerifyCognitoTokens(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	cognito := func(c *IdPConfig) {
		c.Audiences = []string{"app-client-1"}
		c.GroupsClaim = "cognito:groups"
		c.TokenUse = TokenUseAccess
	}
	access := withClaims(baseClaims(iss.URL()),
		"aud", nil, "email", nil, "email_verified", nil,
		"client_id", "app-client-1", "token_use", "access", "scope", "openid",
		"username", "ada", "cognito:groups", []string{"admins"})

	t.Run("user access token", func(t *testing.T) {
		v := newTestVerifier(t, iss, newTestClock(testEpoch), cognito)
		p, err := v.Verify(context.Background(), sign(t, key, access))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if p.Kind != identity.KindUser || !cmp.Equal(p.Groups, []string{"admins"}) {
			t.Errorf("Kind %q Groups %q, want User [admins]", p.Kind, p.Groups)
		}
		// Issue 21.1: username (access) and the scopes reach policy.
		if p.Username != "ada" || !cmp.Equal(p.Scopes, []string{"openid"}) || p.Email != "" {
			t.Errorf("Username %q Scopes %q Email %q, want ada [openid] and no email", p.Username, p.Scopes, p.Email)
		}
	})
	t.Run("id token username", func(t *testing.T) {
		v := newTestVerifier(t, iss, newTestClock(testEpoch), func(c *IdPConfig) { cognito(c); c.TokenUse = TokenUseID })
		id := withClaims(access, "username", nil, "scope", nil, "client_id", nil, "token_use", "id",
			"aud", "app-client-1", "cognito:username", "ada", "email", "ada@example.com")
		p, err := v.Verify(context.Background(), sign(t, key, id))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if p.Username != "ada" || p.Scopes != nil || p.Email != "ada@example.com" {
			t.Errorf("Username %q Scopes %q Email %q, want ada, none, ada@example.com", p.Username, p.Scopes, p.Email)
		}
	})
	t.Run("client credentials token is a service", func(t *testing.T) {
		v := newTestVerifier(t, iss, newTestClock(testEpoch), cognito)
		p, err := v.Verify(context.Background(), sign(t, key, withClaims(access, "sub", "app-client-1", "username", nil)))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if p.Kind != identity.KindService || p.ID != identity.UserID(iss.URL(), "app-client-1") {
			t.Errorf("Kind %q ID %q, want Service %s#app-client-1", p.Kind, p.ID, iss.URL())
		}
	})
	rejects := []struct {
		name   string
		claims map[string]any
		mutate func(*IdPConfig)
	}{
		{"client_id not accepted", withClaims(access, "client_id", "app-client-2"), cognito},
		{"no aud and no client_id", withClaims(access, "client_id", nil), cognito},
		{"id token where access required", withClaims(access, "token_use", "id", "aud", "app-client-1"), cognito},
		{"missing token_use", withClaims(access, "token_use", nil), cognito},
		{"scope not a string or list", withClaims(access, "scope", 7), cognito},
		// Without the access token_use, client_id never stands in for aud.
		{"client_id fallback needs token_use access", withClaims(access, "token_use", "id"), func(c *IdPConfig) {
			cognito(c)
			c.TokenUse = ""
		}},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, iss, newTestClock(testEpoch), tt.mutate)
			raw := sign(t, key, tt.claims)
			_, err := v.Verify(context.Background(), raw)
			wantBearerError(t, err, CodeInvalidToken, "not accepted", raw)
		})
	}
}

func TestVerifyGroupsClaimShapes(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	tests := []struct {
		name   string
		groups any
		want   []string
	}{
		{"array", []string{"a", "b"}, []string{"a", "b"}},
		{"space separated", "a b", []string{"a", "b"}},
		{"comma separated", "a,b", []string{"a", "b"}},
		{"comma and space", " a, b ,,c ", []string{"a", "b", "c"}},
		{"single", "a", []string{"a"}},
		{"empty string", "", nil},
		{"null", json.RawMessage("null"), nil},
		{"absent", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
			p, err := v.Verify(context.Background(), sign(t, key, withClaims(baseClaims(iss.URL()), "groups", tt.groups)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !cmp.Equal(p.Groups, tt.want) {
				t.Errorf("Groups = %q, want %q", p.Groups, tt.want)
			}
		})
	}
}

func TestVerifyContextCancelledIsNotBearerError(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	v := newTestVerifier(t, iss, newTestClock(testEpoch), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, sign(t, key, baseClaims(iss.URL())))
	var be *BearerError
	if !errors.Is(err, context.Canceled) || errors.As(err, &be) {
		t.Errorf("error = %v, want context.Canceled without *BearerError", err)
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		h     string
		token string
		ok    bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc==", "abc==", true},
		{"Bearer a-b_c~d+e/f", "a-b_c~d+e/f", true},
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Bearer  abc", "", false},
		{"Bearer abc def", "", false},
		{"Bearer abc ", "", false},
		{"Bearer\tabc", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"Bearer ===", "", false},
		{"Bearer a=b", "", false},
		{"Bearer abc\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		token, ok := ParseAuthorization(tt.h)
		if token != tt.token || ok != tt.ok {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %q, %v", tt.h, token, ok, tt.token, tt.ok)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer ", "Basic x", "Bearer a b", "BeArEr x==", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, ok := ParseAuthorization(h)
		if !ok {
			if token != "" {
				t.Fatalf("not ok but token %q", token)
			}
			return
		}
		if token == "" || strings.ContainsAny(token, " \t\r\n,\"") {
			t.Fatalf("ok with bad token %q", token)
		}
		if !strings.EqualFold(h[:7], "bearer ") || h[7:] != token {
			t.Fatalf("token %q is not the rest of %q", token, h)
		}
		// Re-parsing the canonical form gives the same token.
		if again, ok := ParseAuthorization("Bearer " + token); !ok || again != token {
			t.Fatalf("canonical form not stable: %q", token)
		}
	})
}
