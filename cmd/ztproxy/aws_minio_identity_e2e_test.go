package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// TestAWSMinIOIdentity: who gets credentials, checked by MinIO's own policy
// evaluation, the Debian awscli as credential_process and SigV4 client, and
// an STS outage.
func TestAWSMinIOIdentity(t *testing.T) {
	e := startMinIOEnv(t)
	secret := "/s3/reports/alice@ztp.test/secret.txt"
	if code, body, _ := e.do(t, "alice", http.MethodPut, secret, strings.NewReader("alice's"), 7); code != 200 {
		t.Fatalf("alice's upload: %d %s", code, body)
	}

	// Issue 14.4 (high): mallory's verified email "*@ztp.test" made the
	// documented policy arn:aws:s3:::reports/*@ztp.test/*, which MinIO (like
	// IAM) evaluates as every user's folder.
	t.Run("a wildcard email gets no credentials", func(t *testing.T) {
		before := len(e.minio.Audit("AssumeRoleSSOCommon"))
		code, body, _ := e.do(t, "mallory", http.MethodGet, secret, nil, 0)
		if code != http.StatusForbidden || !strings.Contains(body, "aws_identity_refused") {
			t.Fatalf("mallory reading alice's object: %d %s", code, body)
		}
		time.Sleep(500 * time.Millisecond) // audit delivery is asynchronous
		if n := len(e.minio.Audit("AssumeRoleSSOCommon")); n != before {
			t.Errorf("STS was called for mallory (%d calls, %d before)", n, before)
		}
	})
	t.Run("an unverified email gets no credentials", func(t *testing.T) {
		code, body, _ := e.do(t, "uma", http.MethodGet, "/s3/reports/uma@ztp.test/x", nil, 0)
		if code != http.StatusForbidden || !strings.Contains(body, "aws_email_unverified") {
			t.Fatalf("uma: %d %s", code, body)
		}
	})

	t.Run("awscli with credential_process", func(t *testing.T) {
		aws := awsCLI(t)
		cfg := filepath.Join(e.dir, "aws-config")
		writeFile(t, cfg, `[profile ztp]
region = us-east-1
credential_process = curl -sf --cacert `+filepath.Join(e.dir, "certs", "ca.pem")+` -H "Authorization: Bearer `+e.tokens["bob"]+`" `+e.base+`/.ztp/aws/credentials?role=reports
`)
		run := func(args ...string) (string, error) {
			cmd := exec.Command(aws, append([]string{"--profile", "ztp", "--endpoint-url", e.minio.URL}, args...)...)
			cmd.Env = []string{"HOME=" + e.dir, "PATH=" + os.Getenv("PATH"), "AWS_CONFIG_FILE=" + cfg,
				"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.dir, "none"), "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true"}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			return out.String(), err
		}
		local := filepath.Join(e.dir, "upload.txt")
		writeFile(t, local, "from the aws cli")
		if out, err := run("s3", "cp", local, "s3://reports/bob@ztp.test/cli key+@=.txt"); err != nil {
			t.Fatalf("aws s3 cp to bob's prefix: %v\n%s", err, out)
		}
		if out, err := run("s3api", "get-object", "--bucket", "reports", "--key", "bob@ztp.test/cli key+@=.txt", filepath.Join(e.dir, "back.txt")); err != nil {
			t.Fatalf("aws s3api get-object: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(e.dir, "back.txt")); string(b) != "from the aws cli" {
			t.Fatalf("read back %q", b)
		}
		// The session policy keeps bob out of alice's prefix.
		out, err := run("s3api", "get-object", "--bucket", "reports", "--key", "alice@ztp.test/secret.txt", filepath.Join(e.dir, "stolen.txt"))
		if err == nil || !strings.Contains(out, "AccessDenied") {
			t.Fatalf("bob read alice's object: %v\n%s", err, out)
		}
		waitFor(t, 5*time.Second, "bob's PutObject on the audit hook", func() bool {
			for _, a := range e.minio.Audit("PutObject") {
				if a.API.Object == "bob@ztp.test/cli key+@=.txt" && a.AccessKey != "" && a.AccessKey != testenv.MinIORootUser {
					return true
				}
			}
			return false
		})
	})

	// Issue 14.3: with STS unreachable the SDK's nested error was taken for
	// a refusal (502 aws_sts_refused, metric label "other") and cached
	// credentials were not served.
	t.Run("STS down: cached credentials served, others 503", func(t *testing.T) {
		creds := func(user string) (int, string) {
			req, _ := http.NewRequest("GET", e.base+"/.ztp/aws/credentials?role=reports", nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens[user])
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, readBody(t, resp)
		}
		code, before := creds("alice")
		if code != 200 {
			t.Fatalf("alice before the outage: %d %s", code, before)
		}
		e.minio.Stop()
		if code, during := creds("alice"); code != 200 || keyOf(during) != keyOf(before) {
			t.Errorf("alice during the outage: %d, key %q, want the cached %q", code, keyOf(during), keyOf(before))
		}
		code, body := creds("carol") // nothing cached
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "aws_unavailable") {
			t.Errorf("carol during the outage: %d %s, want 503 aws_unavailable", code, body)
		}
		if m := e.proc.metrics(t); !strings.Contains(m, `ztproxy_aws_mints_total{result="unavailable",role="reports"}`) {
			t.Errorf("no mint counted as unavailable:\n%s", grepLines(m, "aws_mints"))
		}
	})
}

func keyOf(body string) string {
	var c struct{ AccessKeyId string }
	_ = json.Unmarshal([]byte(body), &c)
	return c.AccessKeyId
}

// awsCLI returns the Debian awscli v2 (.ci/run installs it), skipping, or
// failing under CI, without it. A pyenv or pip "aws" earlier on PATH (v1)
// is not the client under test.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws", "/usr/local/bin/aws"} {
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), "aws-cli/2.") {
			return p
		}
	}
	testenv.RequireComponent(t, "awscli v2", exec.ErrNotFound)
	return ""
}
