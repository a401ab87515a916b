package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

const replicaPolicies = `
@id("eng-uses-app") permit (principal, action, resource) when { principal in Group::"eng" };

@id("medium-risk-step-up")
@step_up("mfa")
forbid (principal, action, resource) when { context.risk.level == "medium" && !context.auth.mfa };

@id("block-high-risk")
@reason("this account looks compromised")
forbid (principal, action, resource) when { context.risk.level == "high" };
`

// TestReplicasShareDynamoDB runs two `ztproxy serve` replicas on one real
// dynalite: a session signed out through one is refused by the other, an
// operator flag set with the CLI is enforced by both, profile updates from
// both merge without loss (flushed on SIGTERM), and a DynamoDB outage
// applies the configured failure mode until it returns.
func TestReplicasShareDynamoDB(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	ddb := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{Persist: true})
	pubA, pubB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admA, admB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	external := "https://" + pubA // the load balancer's address: sign-in goes through A
	op := testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "replica-secret", RedirectURIs: []string{external + "/.ztp/callback"},
			PostLogoutRedirectURIs: []string{external + "/.ztp/signed-out"}}},
		Users: []testenv.OIDCUser{
			{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
			{Sub: "bob", Email: "bob@ztp.test", Password: "bob-pw", Groups: []string{"eng"}},
			{Sub: "carol", Email: "carol@ztp.test", Password: "carol-pw", Groups: []string{"eng"}},
			{Sub: "dave", Email: "dave@ztp.test", Password: "dave-pw", Groups: []string{"eng"}},
		},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), replicaPolicies)
	config := func(name, pub, adm string) string {
		path := filepath.Join(dir, name+".yaml")
		writeFile(t, path, fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy], client_id: ztproxy, client_secret: replica-secret, scopes: [openid, email, profile, groups]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {backend: dynamodb, endpoint: %q, table_prefix: t_, revocation_cache_ttl: 1s, revocation_journal: %s-revocations.db}
risk: {flag_ttl: 1s, profile_ttl: 1s, flush_interval: 1h, unknown_user_score: 10}
routes:
  - {name: app, host: 127.0.0.1, path_prefix: /app, upstream: %q, auth: browser}
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
`, pub, adm, external, op.Issuer, ddb.Endpoint, name, up.URL, up.URL))
		return path
	}
	cfgA, cfgB := config("a", pubA, admA), config("b", pubB, admB)
	if code, out := runZtproxy(t, "store", "init", "--config", cfgA); code != 0 || !strings.Contains(out, "t_profiles ready") {
		t.Fatalf("store init: %d %s", code, out)
	}
	a := startServe(t, cfgA, admA, pubA)
	b := startServe(t, cfgB, admB, pubB)
	env := &browserEnv{certDir: certDir, base: external, op: op}
	client := env.client(t)
	idToken := op.CodeFlowTokens(t, testenv.OIDCClient{ID: "ztproxy", Secret: "replica-secret", RedirectURIs: []string{external + "/.ztp/callback"}},
		op.User(t, "alice"), "", false).IDToken
	bobToken := op.CodeFlowTokens(t, testenv.OIDCClient{ID: "ztproxy", Secret: "replica-secret", RedirectURIs: []string{external + "/.ztp/callback"}},
		op.User(t, "bob"), "", false).IDToken
	carolToken := op.CodeFlowTokens(t, testenv.OIDCClient{ID: "ztproxy", Secret: "replica-secret", RedirectURIs: []string{external + "/.ztp/callback"}},
		op.User(t, "carol"), "", false).IDToken
	daveToken := op.CodeFlowTokens(t, testenv.OIDCClient{ID: "ztproxy", Secret: "replica-secret", RedirectURIs: []string{external + "/.ztp/callback"}},
		op.User(t, "dave"), "", false).IDToken
	dave := op.Issuer + "#dave"
	callAs := func(token, base string) int {
		req, _ := http.NewRequest("GET", base+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	call := func(base string) int { return callAs(idToken, base) }

	t.Run("session revoked through one replica is refused by the other", func(t *testing.T) {
		c := env.client(t)
		resp := op.Login(t, c, external+"/app/x", op.User(t, "alice"), false)
		if body := readBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("sign-in via A: %d %s", resp.StatusCode, body)
		}
		var cookie string
		for _, ck := range c.Jar.Cookies(resp.Request.URL) {
			if ck.Name == "_ztp_session" {
				cookie = ck.Name + "=" + ck.Value
			}
		}
		onB := func() int {
			req, _ := http.NewRequest("GET", "https://"+pubB+"/app/x", nil)
			req.Header.Set("Cookie", cookie)
			resp, err := noFollow(c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := onB(); st != 200 {
			t.Fatalf("cookie on replica B: %d", st)
		}
		op.Logout(t, c, external+"/.ztp/logout")
		waitFor(t, 5*time.Second, "replica B to see the revocation", func() bool { return onB() == http.StatusFound })
	})
	t.Run("operator flag is enforced by both replicas", func(t *testing.T) {
		if st := callAs(daveToken, "https://"+pubA); st != 200 {
			t.Fatalf("before the flag: %d", st)
		}
		if code, out := runZtproxy(t, "risk", "flag", dave, "--level", "compromised", "--reason", "GuardDuty finding", "--config", cfgA); code != 0 {
			t.Fatalf("risk flag: %s", out)
		}
		for _, base := range []string{"https://" + pubA, "https://" + pubB} {
			waitFor(t, 5*time.Second, "flag on "+base, func() bool { return callAs(daveToken, base) == http.StatusForbidden })
		}
		if code, out := runZtproxy(t, "risk", "clear", dave, "--config", cfgA); code != 0 {
			t.Fatalf("risk clear: %s", out)
		}
		// Cleared, dave is no longer blocked. A replica that refused him
		// often while flagged still counts that burst (failed_auth) and
		// may ask him to step up (401) rather than let him straight in.
		for _, base := range []string{"https://" + pubA, "https://" + pubB} {
			waitFor(t, 5*time.Second, "flag cleared on "+base, func() bool {
				st := callAs(daveToken, base)
				return st == http.StatusOK || st == http.StatusUnauthorized
			})
		}
	})
	t.Run("outage applies the failure mode, then recovers", func(t *testing.T) {
		ddb.Stop()
		// profile_ttl is 1s: once the cached profile is stale the engine
		// refreshes in the background and keeps serving it (step_up mode
		// only bites users it has nothing cached for).
		if st := call("https://" + pubA); st != 200 {
			t.Fatalf("cached user during the outage: %d", st)
		}
		// carol is new to both replicas: her profile cannot be read, and
		// on_store_error=step_up never scores that as 0.
		if st := callAs(carolToken, "https://"+pubB); st != http.StatusUnauthorized {
			t.Fatalf("unknown user during the outage: %d, want 401 step-up", st)
		}
		ddb.Restart(t)
		waitFor(t, 10*time.Second, "recovery", func() bool { return callAs(carolToken, "https://"+pubB) == 200 })
	})
	t.Run("profile updates from both replicas merge, flushed on SIGTERM", func(t *testing.T) {
		// bob appears only here: 7 requests through A, 5 through B.
		for i := 0; i < 7; i++ {
			if st := callAs(bobToken, "https://"+pubA); st != 200 {
				t.Fatalf("bob via A: %d", st)
			}
		}
		for i := 0; i < 5; i++ {
			if st := callAs(bobToken, "https://"+pubB); st != 200 {
				t.Fatalf("bob via B: %d", st)
			}
		}
		for _, p := range []*proc{a, b} {
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
			if p.exit != 0 {
				t.Fatalf("replica exit %d:\n%s", p.exit, p.output())
			}
		}
		code, out := runZtproxy(t, "risk", "show", op.Issuer+"#bob", "--config", cfgA)
		if code != 0 {
			t.Fatal(out)
		}
		var shown struct {
			Profile struct {
				Requests int64 `json:"requests"`
			} `json:"profile"`
		}
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatalf("risk show: %v\n%s", err, out)
		}
		// With flush_interval 1h only the SIGTERM flushes wrote them: both
		// replicas' counts must have merged without loss.
		if shown.Profile.Requests != 12 {
			t.Fatalf("merged requests %d, want 12:\n%s", shown.Profile.Requests, out)
		}
	})
}
