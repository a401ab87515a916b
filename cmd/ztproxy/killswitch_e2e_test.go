package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// The kill switch's policies permit everyone and never read risk: what
// refuses a compromised principal below is the engine itself.
const killSwitchPolicies = `
@id("anyone") permit (principal, action, resource);
`

// killSwitchEnv is two `ztproxy serve` replicas on one real dynalite with
// the default revocation cache TTL (30 s) and flag TTL, so that anything
// faster than that came through the change feed.
type killSwitchEnv struct {
	dir, certDir, cfgA, cfgB string
	pubA, pubB               string
	a, b                     *proc
	op                       *testenv.OIDCProvider
	env                      *browserEnv
	// config writes another replica's configuration (name, public and
	// admin addresses) and returns its path.
	config func(name, pub, adm string) string
}

func newKillSwitchEnv(t *testing.T, backchannel bool) *killSwitchEnv {
	return newKillSwitchEnvWith(t, backchannel, "")
}

// newKillSwitchEnvWith appends extra YAML (top-level keys, with %[1]s for
// the replica's external URL) to both replicas' configurations.
func newKillSwitchEnvWith(t *testing.T, backchannel bool, extra string) *killSwitchEnv {
	var opts testenv.OIDCOptions
	k := &killSwitchEnv{dir: t.TempDir()}
	k.certDir = filepath.Join(k.dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", k.certDir); code != 0 {
		t.Fatal(out)
	}
	ddb := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{})
	k.pubA, k.pubB = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admA, admB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	external := "https://" + k.pubA
	opts.Clients = []testenv.OIDCClient{{ID: "ztproxy", Secret: "ks-secret", RedirectURIs: []string{external + "/.ztp/callback"},
		PostLogoutRedirectURIs: []string{external + "/.ztp/signed-out"}}}
	if backchannel {
		opts.Clients[0].BackchannelLogoutURI = external + "/.ztp/backchannel-logout"
		opts.ExtraCAFile = filepath.Join(k.certDir, "ca.pem")
	}
	opts.Users = []testenv.OIDCUser{
		{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
		{Sub: "bob", Email: "bob@ztp.test", Password: "bob-pw", Groups: []string{"eng"}},
		{Sub: "ops", Email: "ops@ztp.test", Password: "ops-pw", Groups: []string{"ztp-admins"}},
	}
	k.op = testenv.StartOIDC(t, opts)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(k.dir, "p.cedar"), killSwitchPolicies)
	config := func(name, pub, adm string) string {
		path := filepath.Join(k.dir, name+".yaml")
		writeFile(t, path, fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
policies: [p.cedar]
audit: {output: %s-audit.log}
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy], client_id: ztproxy, client_secret: ks-secret, scopes: [openid, email, profile, groups]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {backend: dynamodb, endpoint: %q, table_prefix: ks_, revocation_journal: %s-revocations.db}
routes:
  - {name: app, host: 127.0.0.1, path_prefix: /app, upstream: %q, auth: browser}
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
  - {name: svc, host: 127.0.0.1, path_prefix: /svc, upstream: %q, auth: mtls}
`, pub, adm, external, filepath.Join(k.dir, name), k.op.Issuer, ddb.Endpoint, name, up.URL, up.URL, up.URL)+
			strings.ReplaceAll(extra, "%[1]s", external))
		return path
	}
	k.cfgA, k.cfgB = config("a", k.pubA, admA), config("b", k.pubB, admB)
	k.config = config
	if code, out := runZtproxy(t, "store", "init", "--config", k.cfgA); code != 0 {
		t.Fatalf("store init: %d %s", code, out)
	}
	k.a = startServe(t, k.cfgA, admA, k.pubA)
	k.b = startServe(t, k.cfgB, admB, k.pubB)
	k.env = &browserEnv{certDir: k.certDir, base: external, op: k.op}
	return k
}

// signIn signs user in through replica A and returns the session cookie.
func (k *killSwitchEnv) signIn(t *testing.T, user string) string {
	_, cookie := k.signInClient(t, user)
	return cookie
}

// signInClient signs user in through replica A with a new browser and
// returns it (its cookies hold the OP session too) and the proxy cookie.
func (k *killSwitchEnv) signInClient(t *testing.T, user string) (*http.Client, string) {
	return k.env.signInAt(t, "/app/x", user)
}

// status sends a request with the cookie (or none) and header to pub.
func (k *killSwitchEnv) status(t *testing.T, c *http.Client, pub, path, cookie, authz string) int {
	req, _ := http.NewRequest("GET", "https://"+pub+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := noFollow(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// within measures how long until cond holds on both replicas; it fails
// the test after limit.
func within(t *testing.T, limit time.Duration, what string, cond func(pub string) bool, pubs ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, pub := range pubs {
		for !cond(pub) {
			if time.Since(start) > limit {
				t.Fatalf("%s on %s: not within %s", what, pub, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestKillSwitchAcrossReplicas: issue 17, a user's sessions and a
// compromised principal kept working until caches expired (30 s, or
// never for services, which are not scored), and only where a policy read
// risk.level. Now `ztproxy sessions revoke` ends every session of the
// user and `risk flag --level compromised` is a hard deny by the engine,
// for users and services, on every replica within a second.
func TestKillSwitchAcrossReplicas(t *testing.T) {
	k := newKillSwitchEnv(t, false)
	c := tlsClient(t, k.certDir, false)
	device := tlsClient(t, k.certDir, true)
	alice := k.op.Issuer + "#alice"

	t.Run("sessions revoke ends every session of the user on both replicas", func(t *testing.T) {
		s1, s2 := k.signIn(t, "alice"), k.signIn(t, "alice")
		bob := k.signIn(t, "bob")
		for _, pub := range []string{k.pubA, k.pubB} {
			for _, ck := range []string{s1, s2, bob} {
				if st := k.status(t, c, pub, "/app/x", ck, ""); st != 200 {
					t.Fatalf("before: %s %d", pub, st)
				}
			}
		}
		start := time.Now()
		code, out := runZtproxy(t, "sessions", "revoke", alice, "--config", k.cfgB)
		if code != 0 || !strings.Contains(out, "revoked 2 session(s)") {
			t.Fatalf("sessions revoke: %d %s", code, out)
		}
		cli := time.Since(start)
		took := within(t, time.Second, "alice's sessions refused", func(pub string) bool {
			return k.status(t, c, pub, "/app/x", s1, "") == http.StatusFound && k.status(t, c, pub, "/app/x", s2, "") == http.StatusFound
		}, k.pubA, k.pubB)
		t.Logf("sessions revoke: CLI %s, then refused on both replicas after %s", cli, took)
		if st := k.status(t, c, k.pubA, "/app/x", bob, ""); st != 200 {
			t.Errorf("bob's session: %d", st)
		}
	})
	t.Run("compromised is a hard deny for users whatever policy says", func(t *testing.T) {
		tok := k.op.CodeFlowTokens(t, k.op.Client(t, "ztproxy"), k.op.User(t, "alice"), "", false).IDToken
		for _, pub := range []string{k.pubA, k.pubB} {
			if st := k.status(t, c, pub, "/api/x", "", "Bearer "+tok); st != 200 {
				t.Fatalf("before the flag on %s: %d", pub, st)
			}
		}
		if code, out := runZtproxy(t, "risk", "flag", alice, "--level", "compromised", "--reason", "GuardDuty finding", "--config", k.cfgA); code != 0 {
			t.Fatalf("risk flag: %s", out)
		}
		took := within(t, time.Second, "alice refused", func(pub string) bool {
			return k.status(t, c, pub, "/api/x", "", "Bearer "+tok) == http.StatusForbidden
		}, k.pubA, k.pubB)
		t.Logf("compromised flag enforced on both replicas after %s", took)
		waitFor(t, 5*time.Second, "the audit log of B to name the kill switch", func() bool {
			audit, _ := os.ReadFile(filepath.Join(k.dir, "b-audit.log"))
			return strings.Contains(string(audit), `"decision":"deny","policy_ids":["ztproxy:compromised"]`)
		})
		if code, out := runZtproxy(t, "risk", "clear", alice, "--config", k.cfgA); code != 0 {
			t.Fatalf("risk clear: %s", out)
		}
		within(t, time.Second, "alice allowed again", func(pub string) bool {
			return k.status(t, c, pub, "/api/x", "", "Bearer "+tok) == 200
		}, k.pubA, k.pubB)
	})
	t.Run("compromised is a hard deny for services (mTLS)", func(t *testing.T) {
		svc := "spiffe://ztproxy.dev/device/dev-laptop"
		if st := k.status(t, device, k.pubB, "/svc/x", "", ""); st != 200 {
			t.Fatalf("service before the flag: %d", st)
		}
		if code, out := runZtproxy(t, "risk", "flag", svc, "--level", "compromised", "--reason", "key leaked", "--config", k.cfgA); code != 0 {
			t.Fatalf("risk flag: %s", out)
		}
		within(t, time.Second, "service refused", func(pub string) bool {
			return k.status(t, device, pub, "/svc/x", "", "") == http.StatusForbidden
		}, k.pubA, k.pubB)
	})
}

// TestSessionsRevokeEmbeddedStore: issue 17, the kill switch must work
// while serve holds the embedded store's lock: `ztproxy sessions revoke`
// goes through the operator socket and the session is refused at once.
func TestSessionsRevokeEmbeddedStore(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	c := e.client(t)
	resp := e.op.Login(t, c, e.base+"/x", e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	code, out := runZtproxy(t, "sessions", "revoke", e.op.Issuer+"#alice", "--config", e.configPath)
	if code != 0 || !strings.Contains(out, "revoked 1 session(s)") {
		t.Fatalf("sessions revoke: %d %s", code, out)
	}
	start := time.Now()
	waitFor(t, time.Second, "the session to be refused", func() bool {
		resp, err := noFollow(c).Get(e.base + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusFound
	})
	t.Logf("refused %s after the CLI returned", time.Since(start))
}
