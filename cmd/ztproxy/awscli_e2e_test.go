package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"ztproxy/internal/stsdouble"
	"ztproxy/internal/testenv"
)

var (
	formActionRE = regexp.MustCompile(`<form id="f" method="post" action="([^"]+)">`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// TestAWSCredentialProcessCLI: `ztproxy aws credential-process` waits on
// loopback, the signed-in browser (an http.Client with the session) opens
// the printed URL, the proxy's page posts the credentials back, the CLI
// prints them in credential_process format and caches them.
func TestAWSCredentialProcessCLI(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "https://" + public
	op := testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "cli-secret", RedirectURIs: []string{base + "/.ztp/callback"}}},
		Users:   []testenv.OIDCUser{{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}}},
	})
	sts := stsdouble.Start(t, stsdouble.Config{
		AccountID: "123456789012", AccessKeys: map[string]string{"AKIAPROXYTEST0000002": "proxy-secret-2"},
		Roles: []stsdouble.Role{{ARN: "arn:aws:iam::123456789012:role/analyst"}},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), `
permit (principal, action, resource == Route::"app") when { principal in Group::"eng" };
permit (principal, action, resource == Route::"aws:analyst") when { principal in Group::"eng" };
`)
	writeFile(t, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: cli-secret, scopes: [openid, email, profile, groups]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {path: state.db}
aws:
  region: us-east-1
  sts_endpoint: %q
  roles:
    - {name: analyst, role_arn: "arn:aws:iam::123456789012:role/analyst", mode: assume_role}
routes:
  - {name: app, host: 127.0.0.1, upstream: %q, auth: browser}
`, public, admin, base, op.Issuer, sts.URL, up.URL))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAPROXYTEST0000002")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "proxy-secret-2")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	startServe(t, filepath.Join(dir, "z.yaml"), admin, public)
	browser := (&browserEnv{certDir: certDir}).client(t)
	if resp := op.Login(t, browser, base+"/", op.User(t, "alice"), false); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	cacheDir := filepath.Join(dir, "cache")
	runCLI := func(withBrowser bool) (string, string) {
		cmd := exec.Command(ztproxyBinary(t), "aws", "credential-process", "--proxy", base, "--role", "analyst", "--no-browser", "--cache-dir", cacheDir, "--timeout", "20s")
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
			if withBrowser && strings.HasPrefix(line, base+"/.ztp/aws/cli?") {
				resp, err := browser.Get(line)
				if err != nil {
					t.Fatal(err)
				}
				page := readBody(t, resp)
				action := formActionRE.FindStringSubmatch(page)
				if resp.StatusCode != 200 || action == nil || !strings.HasPrefix(action[1], "http://127.0.0.1:") {
					t.Fatalf("hand-off page: %d %s", resp.StatusCode, page)
				}
				form := url.Values{}
				for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
					form.Set(m[1], html.UnescapeString(m[2]))
				}
				r2, err := http.PostForm(html.UnescapeString(action[1]), form)
				if err != nil {
					t.Fatal(err)
				}
				r2.Body.Close()
			}
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("credential-process: %v\n%s", err, errText.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("credential-process hung")
		}
		return stdout.String(), errText.String()
	}
	out, _ := runCLI(true)
	var creds struct {
		Version                      int
		AccessKeyId, SecretAccessKey string
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.Version != 1 {
		t.Fatalf("credential_process output: %v %q", err, out)
	}
	if secret, _, ok := sts.SecretFor(creds.AccessKeyId); !ok || secret != creds.SecretAccessKey {
		t.Fatal("the CLI's credentials were not issued by STS")
	}
	// A second run uses the cache: no sign-in URL, no STS call.
	out2, errText := runCLI(false)
	if out2 != out || strings.Contains(errText, "/.ztp/aws/cli?") || sts.Calls("AssumeRole") != 1 {
		t.Fatalf("cached run: %q, stderr %q, AssumeRole calls %d", out2, errText, sts.Calls("AssumeRole"))
	}
}
