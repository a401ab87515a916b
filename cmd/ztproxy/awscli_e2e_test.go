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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"ztproxy/internal/testenv"
)

var (
	formActionRE = regexp.MustCompile(`<form id="f" method="post" action="([^"]+)">`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// TestAWSCredentialProcessCLI: against MinIO's STS, `ztproxy aws
// credential-process` waits on loopback, the signed-in browser (an http.Client with the session) opens
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
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.CreateBucket(t, "cli")
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
`, public, admin, base, op.Issuer, minio.URL, up.URL))
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.MinIORootUser)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.MinIORootPassword)
	t.Setenv("AWS_SESSION_TOKEN", "")
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
		Version                                    int
		AccessKeyId, SecretAccessKey, SessionToken string
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.Version != 1 {
		t.Fatalf("credential_process output: %v %q", err, out)
	}
	// The credentials work at MinIO, which issued them: S3 accepts a request
	// signed with them.
	signed := aws.Credentials{AccessKeyID: creds.AccessKeyId, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if resp := minio.Signed(t, signed, http.MethodGet, "/cli", "list-type=2", nil); resp.StatusCode != 200 {
		t.Fatalf("the CLI's credentials at S3: %d %s", resp.StatusCode, resp.Body)
	}
	// A second run uses the cache: no sign-in URL, no STS call.
	out2, errText := runCLI(false)
	time.Sleep(300 * time.Millisecond) // audit delivery is asynchronous
	if n := len(minio.Audit("AssumeRole")); out2 != out || strings.Contains(errText, "/.ztp/aws/cli?") || n != 1 {
		t.Fatalf("cached run: %q, stderr %q, AssumeRole calls %d", out2, errText, n)
	}
}

// TestAWSCredentialProcessOpensBrowser: issue 15.16, the sign-in page was
// opened with xdg-open or open only (nothing on Windows); now with
// github.com/cli/browser, whose opener's output must stay off stdout,
// which carries the credentials. The opener here is a stand-in script on
// PATH that records what it was asked to open (no desktop in CI).
func TestAWSCredentialProcessOpensBrowser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stand-in opener is an xdg-open script")
	}
	bin := t.TempDir()
	opened := filepath.Join(t.TempDir(), "opened")
	script := "#!/bin/sh\necho opener-noise\nprintf '%s' \"$1\" > " + opened + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ztproxyBinary(t), "aws", "credential-process", "--proxy", "https://access.example.test", "--role", "analyst",
		"--timeout", "3s", "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // times out: nobody signs in
	got, err := os.ReadFile(opened)
	if err != nil || !strings.HasPrefix(string(got), "https://access.example.test/.ztp/aws/cli?") {
		t.Fatalf("opener got %q (%v); stderr:\n%s", got, err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout, which carries the credentials, got %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "opener-noise") {
		t.Errorf("the opener's output did not go to stderr:\n%s", stderr.String())
	}
}
