package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// cognitoUsers sign in at the Cognito-mode test OP; their Cognito-shaped
// access tokens carry no email.
var cognitoUsers = []testenv.OIDCUser{
	{Sub: "3f1c2a9e-5d7b-4e8a-9c01-6b2d4e8f0a17", Username: "alice", Email: "alice@corp.test", Password: "alice-pw", Groups: []string{"eng"}},
	{Sub: "8a2b7c4d-1e3f-4a5b-8c9d-0e1f2a3b4c5d", Username: "bob", Email: "bob@elsewhere.test", Password: "bob-pw", Groups: []string{"eng"}},
}

// TestE2EUserinfoEnrichment: a Cognito-shaped access token (no email) from
// the npm oidc-provider, completed from the same OP's real userinfo
// endpoint.
// Issue 21.1: access-token callers had no email, so X-Ztp-Email was empty
// and every email-based policy silently failed for them.
func TestE2EUserinfoEnrichment(t *testing.T) {
	op := testenv.StartOIDC(t, testenv.OIDCOptions{Cognito: true, Users: cognitoUsers})
	web := op.Client(t, "ztproxy")
	alice := op.CodeFlowTokens(t, web, cognitoUsers[0], op.Resource, false).AccessToken
	bob := op.CodeFlowTokens(t, web, cognitoUsers[1], op.Resource, false).AccessToken
	idp := fmt.Sprintf(`  - {name: corp, issuer: %q, audiences: [%q], token_use: access, groups_claim: "cognito:groups"`, op.Issuer, op.Resource)

	t.Run("without userinfo the email policy cannot match", func(t *testing.T) {
		e := newIdPEnv(t, "idps:\n"+idp+"}\n")
		if st, body := e.call(t, "/api/x", alice); st != http.StatusForbidden {
			t.Errorf("alice without enrichment: %d %s, want 403 (her token has no email)", st, body)
		}
	})
	e := newIdPEnv(t, "idps:\n"+idp+", userinfo: {cache_ttl: 1m}}\n")
	for range 2 {
		if st, body := e.call(t, "/api/x", alice); st != http.StatusOK || body != "upstream /api/x email=alice@corp.test" {
			t.Fatalf("alice with enrichment: %d %s", st, body)
		}
	}
	if st, body := e.call(t, "/api/x", bob); st != http.StatusForbidden {
		t.Errorf("bob (another domain): %d %s, want 403", st, body)
	}
	if st, body := e.call(t, "/open/x", bob); st != http.StatusOK || body != "upstream /open/x email=bob@elsewhere.test" {
		t.Errorf("bob on /open: %d %s", st, body)
	}
	// One lookup per subject: the second request of alice hit the cache.
	if n := metricValue(t, e.proc, `ztproxy_idp_userinfo_requests_total{idp="corp",result="ok"}`); n != 2 {
		t.Errorf("userinfo requests = %v, want 2 (alice once, bob once)", n)
	}
}

// TestE2EUserinfoHostile: a userinfo endpoint that answers for another
// subject, redirects, sends more than 1 MiB or hangs is refused with a
// clear error, and nothing reaches the upstream.
// Issue 21.1: enrichment must not trust what userinfo says blindly.
func TestE2EUserinfoHostile(t *testing.T) {
	key := testenv.NewRSASigningKey(t, "k1", 0)
	idp := testenv.StartHostileIdP(t, key)
	e := newIdPEnv(t, fmt.Sprintf("idps:\n  - {name: corp, issuer: %q, audiences: [api], userinfo: {timeout: 1s}}\n", idp.Issuer))
	token := func(sub string) string {
		c := idp.Claims(sub, "api", time.Hour)
		delete(c, "email")
		delete(c, "email_verified")
		return testenv.Token(key, c)
	}
	tests := []struct {
		name, desc string
		setup      func()
	}{
		{"other subject", "userinfo is for another subject", func() { idp.SetUserinfo(map[string]any{"sub": "mallory", "email": "mallory@corp.test"}) }},
		{"redirect", "identity provider userinfo unavailable", func() { idp.RedirectUserinfo("http://127.0.0.1:1/userinfo") }},
		{"huge body", "identity provider userinfo unavailable", func() { idp.SetUserinfoPadding(8 << 20) }},
		{"slow", "identity provider userinfo unavailable", func() { idp.SetUserinfoDelay(10 * time.Second) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp.SetUserinfo(nil)
			idp.RedirectUserinfo("")
			idp.SetUserinfoPadding(0)
			idp.SetUserinfoDelay(0)
			tt.setup()
			start := time.Now()
			resp, body := get(t, http.DefaultClient, e.base+"/open/x", map[string]string{"Authorization": "Bearer " + token(fmt.Sprintf("user%d", i))})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tt.desc) {
				t.Errorf("%d %q %s, want 401 with %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tt.desc)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("answered after %s; userinfo.timeout is 1s", took)
			}
		})
	}
	if e.upstreamCalls() != 0 {
		t.Error("a request whose userinfo was refused reached the upstream")
	}
	if n := metricValue(t, e.proc, `ztproxy_idp_userinfo_requests_total{idp="corp",result="mismatch"}`); n != 1 {
		t.Errorf("mismatch count = %v, want 1", n)
	}
	waitFor(t, 5*time.Second, "log lines saying why userinfo failed", func() bool {
		logs := e.proc.output()
		return strings.Contains(logs, "redirects are not followed") && strings.Contains(logs, "larger than 1048576 bytes")
	})
}

// TestE2EUserinfoProceed: with on_failure: proceed an unreachable userinfo
// leaves the token's own claims (no email: the email policy denies), but
// another subject's document is still refused.
func TestE2EUserinfoProceed(t *testing.T) {
	key := testenv.NewRSASigningKey(t, "k1", 0)
	idp := testenv.StartHostileIdP(t, key)
	e := newIdPEnv(t, fmt.Sprintf("idps:\n  - {name: corp, issuer: %q, audiences: [api], userinfo: {on_failure: proceed}}\n", idp.Issuer))
	c := idp.Claims("alice", "api", time.Hour)
	delete(c, "email")
	tok := testenv.Token(key, c)
	idp.SetUserinfoStatus(http.StatusServiceUnavailable)
	if st, body := e.call(t, "/open/x", tok); st != http.StatusOK || body != "upstream /open/x email=" {
		t.Errorf("userinfo down, proceed: %d %s", st, body)
	}
	if st, _ := e.call(t, "/api/x", tok); st != http.StatusForbidden {
		t.Errorf("userinfo down, proceed, email policy: %d, want 403", st)
	}
	idp.SetUserinfoStatus(0)
	idp.SetUserinfo(map[string]any{"sub": "mallory", "email": "mallory@corp.test"})
	c["sub"] = "carol"
	if st, body := e.call(t, "/open/x", testenv.Token(key, c)); st != http.StatusUnauthorized || !strings.Contains(body, "another subject") {
		t.Errorf("other subject under proceed: %d %s, want 401", st, body)
	}
}
