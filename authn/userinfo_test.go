package authn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/identity"
)

// cognitoAccess are the claims of an Amazon Cognito user access token:
// username, client_id, scope and groups, no email and no aud.
func cognitoAccess(iss string) map[string]any {
	return withClaims(baseClaims(iss), "aud", nil, "email", nil, "email_verified", nil,
		"client_id", "my-client", "token_use", "access", "scope", "openid email", "username", "ada")
}

// newUserinfoVerifier is a verifier of iss with userinfo enrichment.
func newUserinfoVerifier(t testing.TB, iss *testIssuer, clock *testClock, uc UserinfoConfig, events UserinfoEvents) *BearerVerifier {
	t.Helper()
	idp := IdPConfig{Name: "cognito", Issuer: iss.URL(), Audiences: []string{"my-client"}, TokenUse: TokenUseAccess,
		ClaimsToExpose: []string{"department", "scope"}, Userinfo: &uc}
	v, err := NewBearerVerifier(BearerConfig{IdPs: []IdPConfig{idp}, Now: clock.Now, UserinfoEvents: events, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("NewBearerVerifier: %v", err)
	}
	return v
}

// Issue 21.1: access-token callers had no email, so email-based policy
// silently failed for them. With userinfo enrichment the principal gets
// the email (and what else the token lacks) of its own subject.
func TestUserinfoEnrichesAccessTokens(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetUserinfo(map[string]any{"sub": "user-123", "email": "ada@example.com", "email_verified": "true",
		"username": "ignored", "name": "Ada", "department": "research", "scope": "not from userinfo"})
	clock := newTestClock(testEpoch)
	v := newUserinfoVerifier(t, iss, clock, UserinfoConfig{}, nil)
	raw := sign(t, key, cognitoAccess(iss.URL()))
	p, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.Email != "ada@example.com" || !p.EmailVerified || p.Name != "Ada" || p.Username != "ada" {
		t.Errorf("principal = %q/%v/%q/%q, want ada@example.com/true/Ada/ada (the token's username wins)", p.Email, p.EmailVerified, p.Name, p.Username)
	}
	if p.Claims["department"] != "research" || p.Claims["scope"] != "openid email" {
		t.Errorf("claims = %v, want department from userinfo and scope from the token", p.Claims)
	}
	if got := iss.LastUserinfoAuthorization(); got != "Bearer "+raw {
		t.Errorf("userinfo was called with %q, want the token itself", got)
	}

	// The verified-token cache holds the enriched principal: no call.
	// Another token of the same subject: no call either.
	if p2, err := v.Verify(context.Background(), raw); err != nil || p2.Email != "ada@example.com" {
		t.Fatalf("cached Verify = %q, %v", p2.Email, err)
	}
	other := sign(t, key, withClaims(cognitoAccess(iss.URL()), "jti", "second-token"))
	if p2, err := v.Verify(context.Background(), other); err != nil || p2.Email != "ada@example.com" {
		t.Fatalf("second token of the subject = %q, %v", p2.Email, err)
	}
	if n := iss.UserinfoRequests(); n != 1 {
		t.Errorf("userinfo requests = %d, want 1 (cached per subject)", n)
	}

	// After cache_ttl the subject is looked up again, and a changed email
	// follows.
	iss.SetUserinfo(map[string]any{"sub": "user-123", "email": "ada@corp.example", "email_verified": true})
	clock.advance(DefaultUserinfoCacheTTL)
	if p3, err := v.Verify(context.Background(), raw); err != nil || p3.Email != "ada@corp.example" {
		t.Fatalf("after the TTL: %q, %v", p3.Email, err)
	}
	if n := iss.UserinfoRequests(); n != 2 {
		t.Errorf("userinfo requests = %d, want 2", n)
	}
}

// The token's own claims, signed by the IdP, are never replaced, and a
// client-credentials token (no user) is never looked up.
func TestUserinfoTokenClaimsWin(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetUserinfo(map[string]any{"sub": "user-123", "email": "mallory@example.com", "email_verified": true})
	v := newUserinfoVerifier(t, iss, newTestClock(testEpoch), UserinfoConfig{}, nil)
	p, err := v.Verify(context.Background(), sign(t, key, withClaims(cognitoAccess(iss.URL()), "email", "ada@example.com")))
	if err != nil || p.Email != "ada@example.com" || p.EmailVerified {
		t.Fatalf("Verify = %q/%v, %v; want the token's email, unverified as the token says", p.Email, p.EmailVerified, err)
	}
	svc, err := v.Verify(context.Background(), sign(t, key, withClaims(cognitoAccess(iss.URL()), "sub", "my-client", "username", nil)))
	if err != nil || svc.Kind != identity.KindService {
		t.Fatalf("client-credentials token: %v %v", svc.Kind, err)
	}
	if n := iss.UserinfoRequests(); n != 1 {
		t.Errorf("userinfo requests = %d, want 1 (none for the service)", n)
	}
}

// Issue 21.1: a hostile or broken userinfo endpoint is refused with a
// clear error: another subject's document (in both modes), a redirect, a
// body over 1 MiB, a hung endpoint, a refusal, a signed (JWT) answer.
func TestUserinfoHostile(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	tests := []struct {
		name   string
		setup  func(h *testIssuer)
		desc   string
		result string
		cause  string
		// proceeds: with on_failure proceed the token is accepted
		// without the userinfo claims.
		proceeds bool
	}{
		{"other subject", func(h *testIssuer) { h.SetUserinfo(map[string]any{"sub": "mallory", "email": "mallory@example.com"}) },
			descUserinfoMismatch, UserinfoMismatch, `userinfo sub "mallory" differs`, false},
		{"no subject", func(h *testIssuer) { h.SetUserinfo(map[string]any{"email": "x@example.com"}) },
			descUserinfoUnavailable, UserinfoError, "no sub", true},
		{"redirect", func(h *testIssuer) { h.RedirectUserinfo("http://127.0.0.1:1/elsewhere") },
			descUserinfoUnavailable, UserinfoError, "redirects are not followed", true},
		{"huge body", func(h *testIssuer) { h.SetUserinfoPadding(3 << 20) },
			descUserinfoUnavailable, UserinfoError, "larger than 1048576 bytes", true},
		{"slow", func(h *testIssuer) { h.SetUserinfoDelay(5 * time.Second) },
			descUserinfoUnavailable, UserinfoError, "deadline exceeded", true},
		{"refused", func(h *testIssuer) { h.SetUserinfoStatus(401) },
			descUserinfoRefused, UserinfoRefused, "401", true},
		{"down", func(h *testIssuer) { h.SetUserinfoStatus(503) },
			descUserinfoUnavailable, UserinfoError, "503", true},
		{"signed userinfo", func(h *testIssuer) { h.SetUserinfoContentType("application/jwt") },
			descUserinfoUnavailable, UserinfoError, "application/jwt", true},
	}
	for _, tt := range tests {
		for _, mode := range []string{UserinfoDeny, UserinfoProceed} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				iss := newTestIssuer(t, key)
				tt.setup(iss)
				var mu sync.Mutex
				var results []string
				events := func(idp, result string) { mu.Lock(); results = append(results, idp+":"+result); mu.Unlock() }
				uc := UserinfoConfig{OnFailure: mode, Timeout: 300 * time.Millisecond}
				v := newUserinfoVerifier(t, iss, newTestClock(testEpoch), uc, events)
				raw := sign(t, key, cognitoAccess(iss.URL()))
				start := time.Now()
				p, err := v.Verify(context.Background(), raw)
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("Verify took %s; userinfo.timeout is 300ms", took)
				}
				mu.Lock()
				if len(results) != 1 || results[0] != "cognito:"+tt.result {
					t.Errorf("events = %q, want [cognito:%s]", results, tt.result)
				}
				mu.Unlock()
				if mode == UserinfoProceed && tt.proceeds {
					if err != nil || p.Email != "" || p.Username != "ada" {
						t.Fatalf("proceed: Verify = %q, %v; want the token's claims alone", p.Email, err)
					}
					return
				}
				be := wantBearerError(t, err, CodeInvalidToken, tt.desc, raw)
				if be != nil && !strings.Contains(be.Error(), tt.cause) {
					t.Errorf("error %q does not say %q", be.Error(), tt.cause)
				}
			})
		}
	}
}

// A failed lookup stands for its subject for userinfoRetryAfter: an IdP
// outage costs one call per subject per interval, not one per request.
func TestUserinfoFailureRetry(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetUserinfoStatus(503)
	clock := newTestClock(testEpoch)
	v := newUserinfoVerifier(t, iss, clock, UserinfoConfig{OnFailure: UserinfoProceed}, nil)
	raw := sign(t, key, cognitoAccess(iss.URL()))
	for range 3 {
		if p, err := v.Verify(context.Background(), raw); err != nil || p.Email != "" {
			t.Fatalf("Verify = %q, %v", p.Email, err)
		}
	}
	if n := iss.UserinfoRequests(); n != 1 {
		t.Errorf("userinfo requests during an outage = %d, want 1", n)
	}
	iss.SetUserinfoStatus(0)
	clock.advance(userinfoRetryAfter)
	if p, err := v.Verify(context.Background(), raw); err != nil || p.Email != "alice@corp.test" {
		t.Fatalf("after the retry interval: %q, %v; want the recovered userinfo's email", p.Email, err)
	}
	if n := iss.UserinfoRequests(); n != 2 {
		t.Errorf("userinfo requests = %d, want 2", n)
	}
}

// Concurrent first requests of one subject share one lookup.
func TestUserinfoConcurrentLookupsShared(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetUserinfoDelay(200 * time.Millisecond)
	v := newUserinfoVerifier(t, iss, newTestClock(testEpoch), UserinfoConfig{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		raw := sign(t, key, withClaims(cognitoAccess(iss.URL()), "jti", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), raw); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := iss.UserinfoRequests(); n != 1 {
		t.Errorf("userinfo requests = %d, want 1", n)
	}
}

// A caller that goes away stops waiting; the lookup it started finishes
// for the others.
func TestUserinfoCallerCancelled(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	iss.SetUserinfoDelay(300 * time.Millisecond)
	v := newUserinfoVerifier(t, iss, newTestClock(testEpoch), UserinfoConfig{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, sign(t, key, cognitoAccess(iss.URL())))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want the caller's deadline", err)
	}
	var be *BearerError
	if errors.As(err, &be) {
		t.Errorf("a cancelled caller got a BearerError: %v", be)
	}
}

func TestUserinfoConfig(t *testing.T) {
	tests := []struct {
		name string
		idp  IdPConfig
		want string
	}{
		{"jwks_url needs url", IdPConfig{JWKSURL: "https://idp.example.com/jwks", Userinfo: &UserinfoConfig{}}, "userinfo.url: required with jwks_url"},
		{"plain http", IdPConfig{Userinfo: &UserinfoConfig{URL: "http://idp.example.com/userinfo"}}, "userinfo.url"},
		{"mode", IdPConfig{Userinfo: &UserinfoConfig{OnFailure: "ignore"}}, "userinfo.on_failure"},
		{"ttl", IdPConfig{Userinfo: &UserinfoConfig{CacheTTL: 48 * time.Hour}}, "userinfo.cache_ttl"},
		{"timeout", IdPConfig{Userinfo: &UserinfoConfig{Timeout: time.Minute}}, "userinfo.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.idp
			c.Name, c.Issuer, c.Audiences = "cognito", "https://idp.example.com", []string{"client"}
			err := c.CheckAndSetDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckAndSetDefaults = %v, want %q", err, tt.want)
			}
		})
	}
	uc := UserinfoConfig{}
	c := IdPConfig{Name: "cognito", Issuer: "https://idp.example.com", Audiences: []string{"client"}, Userinfo: &uc}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Userinfo.OnFailure != UserinfoDeny || c.Userinfo.CacheTTL != DefaultUserinfoCacheTTL || uc.OnFailure != "" {
		t.Errorf("defaults %+v (caller's copy %+v): want deny, %s, caller's config untouched", *c.Userinfo, uc, DefaultUserinfoCacheTTL)
	}
}

// BenchmarkVerifyCachedUserinfo is BenchmarkVerifyCached for an IdP with
// userinfo enrichment: a cached token must cost what it costs without.
func BenchmarkVerifyCachedUserinfo(b *testing.B) {
	key := rsaKey(b, 0, "k1")
	iss := newTestIssuer(b, key)
	v := newUserinfoVerifier(b, iss, newTestClock(testEpoch), UserinfoConfig{}, nil)
	raw := sign(b, key, cognitoAccess(iss.URL()))
	ctx := context.Background()
	if p, err := v.Verify(ctx, raw); err != nil || p.Email == "" {
		b.Fatalf("warm-up: %q, %v", p.Email, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNewTokenCachedSubject is the first request of a new token
// whose subject's userinfo is cached: a signature check, no IdP call.
func BenchmarkVerifyNewTokenCachedSubject(b *testing.B) {
	key := rsaKey(b, 0, "k1")
	iss := newTestIssuer(b, key)
	v := newUserinfoVerifier(b, iss, newTestClock(testEpoch), UserinfoConfig{}, nil)
	ctx := context.Background()
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = sign(b, key, withClaims(cognitoAccess(iss.URL()), "jti", i))
	}
	if _, err := v.Verify(ctx, tokens[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v.cache = newTokenCache(DefaultTokenCacheSize) // every token is new to the token cache
		if _, err := v.Verify(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if n := iss.UserinfoRequests(); n != 1 {
		b.Errorf("userinfo requests = %d, want 1", n)
	}
}

// FuzzParseUserinfo: userinfo documents are IdP bytes; parsing never
// panics, and what it accepts has a sub and an email that passed the
// one-plain-address rule.
func FuzzParseUserinfo(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"user-123","email":"ada@example.com","email_verified":"true","username":"ada"}`,
		`{"sub":"user-123","email":"a@evil@corp.test","email_verified":true}`,
		`{"sub":"","email":"x@example.com"}`,
		`{"sub":7}`,
		`{"email":"x@example.com"}`,
		`{"sub":"u","email_verified":"yes"}`,
		`{"sub":"u","department":{"a":[1,2]},"cognito:username":"ada"}`,
		`[]`, `null`, ``, `{"sub":"u"`,
	} {
		f.Add([]byte(seed))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body []byte) {
		info, sub, err := parseUserinfo(body, []string{"department"}, "fuzz", logger)
		if err != nil {
			return
		}
		if sub == "" {
			t.Fatal("accepted a document without a sub")
		}
		if info.email != "" && checkEmail(info.email) != "" {
			t.Fatalf("accepted email %q", info.email)
		}
		if info.email == "" && info.emailVerified {
			t.Fatal("email_verified without an email")
		}
	})
}

// FuzzScopeList: scope claims never panic the parser, no scope is empty,
// and a space-separated string never yields a scope with a space.
func FuzzScopeList(f *testing.F) {
	for _, seed := range [][2]string{
		{`"openid email https://api.example.com/read"`, ``}, {``, `["a","b"]`}, {`7`, ``}, {`null`, `"x y"`},
		{`["a",""]`, ``}, {`"  "`, ``}, {`{"a":1}`, ``},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, scope, scp []byte) {
		list, err := scopeList(scope, scp)
		if err != nil {
			return
		}
		var fromString string
		isString := json.Unmarshal(scope, &fromString) == nil
		for _, s := range list {
			if s == "" || (isString && strings.Contains(s, " ")) {
				t.Fatalf("scope %q from %q/%q", s, scope, scp)
			}
		}
	})
}
