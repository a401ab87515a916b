package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// devicePolicies admit only enrolled devices of the signed-in user with
// an encrypted disk on api and finance; fresh and fresh-stepup need
// posture younger than 3 s (deny, or step-up); edr needs a vendor score.
const devicePolicies = `
@id("app")
permit (principal, action, resource == Route::"app");

@id("trusted-device")
@reason("this application needs your own enrolled device with an encrypted disk")
permit (principal is User, action, resource)
when { (resource == Route::"api" || resource == Route::"finance") &&
  context.device.enrolled && context.device.owner_matches && context.device.status == "active" && context.device.posture.disk_encrypted };

@id("own-device")
permit (principal is User, action, resource)
when { (resource == Route::"fresh" || resource == Route::"fresh-stepup") && context.device.enrolled && context.device.owner_matches };

@id("fresh-posture")
@reason("your device's posture is out of date; run ztproxy device report")
forbid (principal, action, resource == Route::"fresh") unless { context.device.posture_age_seconds < 3 };

@id("fresh-posture-or-mfa")
@step_up("mfa")
forbid (principal, action, resource == Route::"fresh-stepup") unless { context.device.posture_age_seconds < 3 };

@id("managed-device")
@reason("this application needs your own managed, compliant device")
permit (principal is User, action, resource == Route::"managed")
when { context.device.enrolled && context.device.owner_matches && context.device.status == "active" && context.device.managed };

@id("edr-score")
permit (principal is User, action, resource == Route::"edr")
when { context.device.owner_matches && context.device.posture.score >= 70 };
`

// deviceEnv is the real binary with devices enabled, the real test OP and
// an upstream, over TLS with client certificates requested.
type deviceEnv struct {
	*browserEnv
	dir, devCA string
	upstream   string
	client     testenv.OIDCClient
}

// deviceEnvOptions vary the environment.
type deviceEnvOptions struct {
	store   string // the store: line; default the embedded file
	devices string // more lines of the devices block (indented by 2)
	public  string // listen address; default a free port
	admin   string // admin address; default a free port
	top     string // more top-level lines (ext_authz_listen: …)
	name    string // config file name
	// cacheTTL is devices.cache_ttl; default 2s.
	cacheTTL string
	noStart  bool
}

func newDeviceEnv(t *testing.T, o deviceEnvOptions) *deviceEnv {
	dir := t.TempDir()
	e := &deviceEnv{browserEnv: &browserEnv{certDir: filepath.Join(dir, "certs")}, dir: dir, devCA: filepath.Join(dir, "devca")}
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	if code, out := runZtproxy(t, "certs", "device-ca", "--out", e.devCA); code != 0 || !strings.Contains(out, "device-ca-key.pem") {
		t.Fatalf("certs device-ca: %d %s", code, out)
	}
	if o.public == "" {
		o.public = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	}
	e.base = "https://" + o.public
	e.client = testenv.OIDCClient{ID: "ztproxy", Secret: "device-secret", RedirectURIs: []string{e.base + "/.ztp/callback"}}
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{e.client},
		Users: []testenv.OIDCUser{
			{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
			{Sub: "bob", Email: "bob@ztp.test", Password: "bob-pw", Groups: []string{"eng"}},
			{Sub: "ops", Email: "ops@ztp.test", Password: "ops-pw", Groups: []string{"ztp-admins"}},
		},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app says hello to "+r.Header.Get("X-Ztp-Email")+" on "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), devicePolicies)
	if o.store == "" {
		o.store = "{path: state.db}"
	}
	if o.name == "" {
		o.name = "ztproxy"
	}
	if o.admin == "" {
		o.admin = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	}
	e.upstream = up.URL
	e.writeConfig(t, o)
	if !o.noStart {
		e.proc = startServe(t, e.configPath(o.name), o.admin, o.public)
	}
	return e
}

func (e *deviceEnv) configPath(name string) string { return filepath.Join(e.dir, name+".yaml") }

// writeConfig writes <name>.yaml for a replica listening on o.public.
func (e *deviceEnv) writeConfig(t *testing.T, o deviceEnvOptions) {
	writeFile(t, e.configPath(o.name), fmt.Sprintf(`
listen: %[1]q
admin_listen: %[2]q
external_url: %[3]q
%[8]s
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %[4]q, audiences: [ztproxy], client_id: ztproxy, client_secret: device-secret, scopes: [openid, email, profile, groups, offline_access]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: %[5]s
devices:
  enabled: true
  ca_cert_file: devca/device-ca.pem
  ca_key_file: devca/device-ca-key.pem
  cert_lifetime: 24h
  cache_ttl: %[9]s
%[6]s
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %[7]q, auth: bearer}
  - {name: finance, host: 127.0.0.1, path_prefix: /finance, upstream: %[7]q, auth: browser}
  - {name: fresh, host: 127.0.0.1, path_prefix: /fresh, upstream: %[7]q, auth: bearer}
  - {name: fresh-stepup, host: 127.0.0.1, path_prefix: /fresh-stepup, upstream: %[7]q, auth: bearer}
  - {name: edr, host: 127.0.0.1, path_prefix: /edr, upstream: %[7]q, auth: bearer}
  - {name: managed, host: 127.0.0.1, path_prefix: /managed, upstream: %[7]q, auth: bearer}
  - {name: app, host: 127.0.0.1, upstream: %[7]q, auth: browser}
`, o.public, o.admin, e.base, e.op.Issuer, o.store, o.devices, e.upstream, o.top, cmp.Or(o.cacheTTL, "2s")))
}

// token is a user's ID token (aud ztproxy), a bearer token for api.
func (e *deviceEnv) token(t *testing.T, user string) string {
	return e.op.CodeFlowTokens(t, e.client, e.op.User(t, user), "", false).IDToken
}

// deviceClient presents the device certificate in dir (and a session
// cookie jar).
func (e *deviceEnv) deviceClient(t *testing.T, dir string) *http.Client {
	c := e.browserEnv.client(t)
	pair, err := loadKeyPair(filepath.Join(dir, "device.pem"), filepath.Join(dir, "device-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c.Transport.(*http.Transport).TLSClientConfig.Certificates = pair
	return c
}

// call GETs path with a bearer token through client and returns the
// status and body.
func call(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	hdr := map[string]string{"Accept": "application/json"}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	resp, body := get(t, c, url, hdr)
	return resp.StatusCode, body
}

var enrollFormRE = regexp.MustCompile(`<form method="post" action="/.ztp/devices/enroll">`)

// enroll runs `ztproxy device enroll` into dir and plays the browser with
// browser (a client signed in as user or about to be): the printed link,
// the step-up to a fresh second factor at the OP when needed, the
// confirmation, the hand-back to the CLI's loopback port. It returns the
// CLI's output.
func (e *deviceEnv) enroll(t *testing.T, browser *http.Client, user, dir string, extra ...string) string {
	t.Helper()
	args := append([]string{"device", "enroll", "--proxy", e.base, "--cacert", filepath.Join(e.certDir, "ca.pem"),
		"--dir", dir, "--name", "test laptop", "--no-browser", "--timeout", "60s"}, extra...)
	out, _ := runHandOffCLI(t, e.base+"/.ztp/devices/enroll?", func(link string) { e.confirmEnrollment(t, browser, user, link) }, args...)
	return out
}

// runHandOffCLI runs a ztproxy command that hands off to the browser
// (device enroll, aws credential-process): for each link it prints with
// prefix, open plays the browser. It returns stdout and stderr and fails
// the test when the command fails or hangs.
func runHandOffCLI(t *testing.T, prefix string, open func(link string), args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(ztproxyBinary(t), args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		errText.WriteString(line + "\n")
		if open != nil && strings.HasPrefix(line, prefix) {
			open(line)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", args[0], err, stdout.String(), errText.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s hung", args[0])
	}
	return stdout.String(), errText.String()
}

// confirmEnrollment opens the enrolment link as the user (stepping up
// with a second factor at the OP when asked), confirms and hands the
// certificate back.
func (e *deviceEnv) confirmEnrollment(t *testing.T, browser *http.Client, user, link string) {
	t.Helper()
	resp := e.op.Login(t, browser, link, e.op.User(t, user), true)
	page := readBody(t, resp)
	if resp.StatusCode != 200 || !enrollFormRE.MatchString(page) {
		t.Fatalf("enrolment page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	resp = e.postForm(t, browser, e.base+"/.ztp/devices/enroll", hiddenFields(page))
	page = readBody(t, resp)
	action := formActionRE.FindStringSubmatch(page)
	if resp.StatusCode != 200 || action == nil || !strings.HasPrefix(action[1], "http://127.0.0.1:") {
		t.Fatalf("hand-off page: %d %s", resp.StatusCode, page)
	}
	r2, err := http.PostForm(html.UnescapeString(action[1]), hiddenFields(page))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, r2); r2.StatusCode != 200 {
		t.Fatalf("hand-off to the CLI: %d %s", r2.StatusCode, body)
	}
}

// postForm posts a form as a page of the proxy's own origin does.
func (e *deviceEnv) postForm(t *testing.T, c *http.Client, target string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.base)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hiddenFields(page string) url.Values {
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return form
}

var deviceIDRE = regexp.MustCompile(`enrolled device ([a-z2-7]{26})`)

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
