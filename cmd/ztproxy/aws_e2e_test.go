package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"ztproxy/internal/stsdouble"
	"ztproxy/internal/testenv"
)

const awsPolicies = `
@id("eng-uses-api") permit (principal, action, resource == Route::"api") when { principal in Group::"eng" };
@id("eng-gets-analyst") permit (principal, action, resource == Route::"aws:analyst") when { principal in Group::"eng" };
`

// TestAWSCredentials runs the real binary with the protocol-faithful STS
// double (SigV4-verified AssumeRole, web identity tokens verified against
// the real test OP's JWKS): an AWS upstream receives requests re-signed
// with the user's minted credentials, and /.ztp/aws/credentials hands a
// policy-permitted user credential_process JSON.
func TestAWSCredentials(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	op := startAWSTestOP(t, "aws-secret")
	sts := stsdouble.Start(t, stsdouble.Config{
		AccountID: "123456789012", AccessKeys: map[string]string{"AKIAPROXYTEST0000001": "proxy-long-term-secret"},
		Roles: []stsdouble.Role{{ARN: "arn:aws:iam::123456789012:role/analyst"}, {ARN: "arn:aws:iam::123456789012:role/ops"}},
		OIDC:  &stsdouble.OIDC{Issuer: op.Issuer, Audience: "ztproxy", JWKSURL: op.JWKSURI},
	})
	awsAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		akid, err := sts.VerifyRequest(r, "execute-api")
		if err != nil {
			http.Error(w, "signature: "+err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "signed by "+akid)
	}))
	t.Cleanup(awsAPI.Close)
	fed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var session struct{ SessionID, SessionKey, SessionToken string }
		if r.URL.Query().Get("Action") != "getSigninToken" || json.Unmarshal([]byte(r.URL.Query().Get("Session")), &session) != nil {
			http.Error(w, "bad request", 400)
			return
		}
		if secret, token, ok := sts.SecretFor(session.SessionID); !ok || secret != session.SessionKey || token != session.SessionToken {
			http.Error(w, "unknown session", 400)
			return
		}
		io.WriteString(w, `{"SigninToken":"signin-token-for-test"}`)
	}))
	t.Cleanup(fed.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), awsPolicies)
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy]}
store: {path: state.db}
aws:
  region: us-east-1
  sts_endpoint: %q
  federation_endpoint: %q
  roles:
    - {name: analyst, role_arn: "arn:aws:iam::123456789012:role/analyst", mode: web_identity}
    - name: ops
      role_arn: "arn:aws:iam::123456789012:role/ops"
      mode: assume_role
      duration: 15m
      session_tags: {email: "{{.Email}}", risk: "{{.RiskLevel}}"}
routes:
  - name: api
    host: 127.0.0.1
    path_prefix: /api
    upstream: %q
    auth: bearer
    pass_identity_headers: false
    aws: {role: ops, sign: {service: execute-api, region: us-east-1}}
`, public, admin, public, op.Issuer, sts.URL, fed.URL, awsAPI.URL))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAPROXYTEST0000001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "proxy-long-term-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	startServe(t, filepath.Join(dir, "z.yaml"), admin, public)
	base := "https://" + public
	client := tlsClient(t, certDir, false)
	client2 := op.Client(t, "ztproxy")
	alice := op.CodeFlowTokens(t, client2, op.User(t, "alice"), "", false).IDToken
	bob := op.CodeFlowTokens(t, client2, op.User(t, "bob"), "", false).IDToken

	t.Run("requests to an AWS upstream are re-signed with the user's credentials", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			req, _ := http.NewRequest("POST", base+"/api/items", strings.NewReader(`{"n":1}`))
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "signed by ASIA") {
				t.Fatalf("AWS upstream: %d %s", resp.StatusCode, body)
			}
		}
		if n := sts.Calls("AssumeRole"); n != 1 {
			t.Fatalf("AssumeRole calls = %d, want 1 (cached)", n)
		}
		p := sts.LastRequest().Params
		if p.Get("SourceIdentity") != "alice@ztp.test" || p.Get("Tags.member.1.Key") == "" || p.Get("DurationSeconds") != "900" {
			t.Fatalf("AssumeRole parameters: %v", p)
		}
	})
	t.Run("credential_process JSON for a permitted user", func(t *testing.T) {
		get := func(token string) (*http.Response, string) {
			req, _ := http.NewRequest("GET", base+"/.ztp/aws/credentials?role=analyst", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp, readBody(t, resp)
		}
		resp, body := get(alice)
		var creds struct {
			Version                                    int
			AccessKeyId, SecretAccessKey, SessionToken string
			Expiration                                 string
		}
		if err := json.Unmarshal([]byte(body), &creds); err != nil || resp.StatusCode != 200 || creds.Version != 1 || creds.SecretAccessKey == "" {
			t.Fatalf("credentials: %d %s", resp.StatusCode, body)
		}
		if secret, _, ok := sts.SecretFor(creds.AccessKeyId); !ok || secret != creds.SecretAccessKey {
			t.Fatal("returned credentials were not issued by STS")
		}
		if n := sts.Calls("AssumeRoleWithWebIdentity"); n != 1 {
			t.Fatalf("web identity calls = %d", n)
		}
		if resp, _ := get(bob); resp.StatusCode != 403 {
			t.Fatalf("bob (not permitted): %d", resp.StatusCode)
		}
		if n := sts.Calls("AssumeRoleWithWebIdentity"); n != 1 {
			t.Fatal("credentials minted for a user policy refused")
		}
	})
	t.Run("console sign-in", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/.ztp/aws/console?role=analyst", nil)
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := noFollow(client).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, fed.URL+"?") || !strings.Contains(loc, "SigninToken=signin-token-for-test") || !strings.Contains(loc, "Action=login") {
			t.Fatalf("console: %d %s", resp.StatusCode, loc)
		}
	})
}
