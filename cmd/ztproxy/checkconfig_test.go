package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

// TestExampleConfigIsValid follows the README: dev certificates, then
// check-config on config.example.yaml with its example policies.
func TestExampleConfigIsValid(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	for _, f := range []string{"config.example.yaml", "policies/example.cedar"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(data))
	}
	if code, out := runZtproxy(t, "certs", "dev", "--out", filepath.Join(dir, "dev-certs")); code != 0 {
		t.Fatalf("certs dev: %s", out)
	}
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "config.example.yaml"))
	if code != 0 {
		t.Fatalf("check-config on the example: exit %d\n%s", code, out)
	}
}

// TestCheckConfigListsEveryProblem breaks a config in several places and
// expects each problem with its path, including Cedar errors with file:line.
func TestCheckConfigListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n\nforbid (principal action, resource);\n")
	writeFile(t, filepath.Join(dir, "bad.yaml"), `
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:8443"
external_url: "ftp://x"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - {name: a, host: app.example.com, upstream: "not a url", auth: bearer}
  - {name: b, host: app.example.com, upstream: "http://127.0.0.1:1", auth: magic, upsteam: x}
`)
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "bad.yaml"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"admin_listen", "external_url", "routes[0].upstream", "routes[1].auth", "routes[1].upsteam", "p.cedar:3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyTestCommand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `
@id("eng-api") permit (principal, action, resource == Route::"api") when { principal in Group::"eng" };
@id("fresh-mfa") @step_up("mfa") forbid (principal, action == Action::"DELETE", resource == Route::"api") unless { context.auth.mfa };
`)
	writeFile(t, filepath.Join(dir, "c.yaml"), `
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - {name: api, host: app.example.com, upstream: "http://127.0.0.1:1", auth: public}
`)
	cases := []struct{ input, want, ids string }{
		{`{"principal":"alice","groups":["eng"],"route":"api","method":"GET","path":"/x","ip":"10.0.0.1"}`, "allow", "eng-api"},
		{`{"principal":"bob","groups":["sales"],"route":"api","method":"GET"}`, "deny", "none"},
		{`{"principal":"alice","groups":["eng"],"route":"api","method":"DELETE"}`, "step_up", "fresh-mfa"},
		{`{"principal":"alice","groups":["eng"],"route":"api","method":"DELETE","amr":["pwd","otp"]}`, "allow", "eng-api"},
	}
	for _, c := range cases {
		in := filepath.Join(dir, "in.json")
		writeFile(t, in, c.input)
		code, out := runZtproxy(t, "policy", "test", "--config", filepath.Join(dir, "c.yaml"), "--input", in, "--expect", c.want)
		if code != 0 || !strings.Contains(out, "decision: "+c.want) || !strings.Contains(out, c.ids) {
			t.Errorf("%s: exit %d\n%s", c.input, code, out)
		}
	}
}

// TestCheckConfigCatchesAWSLimits: an AWS role that STS would refuse
// fails check-config, not a request at 3 a.m.
func TestCheckConfigCatchesAWSLimits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	var tags strings.Builder
	for i := 0; i < 51; i++ {
		fmt.Fprintf(&tags, "        k%d: v\n", i)
	}
	writeFile(t, filepath.Join(dir, "c.yaml"), `
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
aws:
  region: us-east-1
  roles:
    - name: analyst
      role_arn: "arn:aws:iam::123456789012:role/analyst"
      mode: assume_role
      duration: 1m
      session_tags:
`+tags.String()+`
routes:
  - {name: api, host: app.example.com, upstream: "http://127.0.0.1:1", auth: public, aws: {role: nope}}
`)
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "c.yaml"))
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"aws.roles[0].duration", "aws.roles[0].session_tags", "routes[0].aws.role", "AWS credentials are per user"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckConfigEnvCannotAddKeys: issue 12.12 through the real binary. A
// variable holding a newline and "key: value" added that key to the
// document (here, silently turning on preserve_host). Values are now
// expanded after parsing: the newline stays in the host, which is refused.
func TestCheckConfigEnvCannotAddKeys(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	writeFile(t, filepath.Join(dir, "c.yaml"), `listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - name: api
    host: ${ZTP_E2E_HOST}
    upstream: "http://127.0.0.1:1"
    auth: public
`)
	code, out := runWithEnv(t, []string{"ZTP_E2E_HOST=app.example.com\n    preserve_host: true"}, "check-config", "--config", filepath.Join(dir, "c.yaml"))
	if code != 1 || !strings.Contains(out, `routes[0].host (line 8): "app.example.com\n    preserve_host: true"`) {
		t.Fatalf("exit %d, want the host refused:\n%s", code, out)
	}
}

// TestCheckConfigWarnsWorldReadableSecret: a secret file every user can
// read is a warning with its path and line (exit 0), never a failure.
func TestCheckConfigWarnsWorldReadableSecret(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	secret := filepath.Join(dir, "client-secret")
	writeFile(t, secret, "s3cr3t\n")
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "c.yaml"), `listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
idps: [{name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: client-secret}]
routes:
  - {name: api, host: app.example.com, upstream: "http://127.0.0.1:1", auth: public}
`)
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "c.yaml"))
	want := "warning: idps[0].client_secret_file (line 6): " + secret + " is readable by every user (mode 0644)"
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "s3cr3t") {
		t.Fatalf("exit %d, want %q in:\n%s", code, want, out)
	}
}
