package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// minioEnv is the real binary in front of MinIO (S3 verifying SigV4 on
// every request, STS for AssumeRole and AssumeRoleWithWebIdentity against
// the real test OP): an implementation of the AWS protocols we did not
// write (issue 14).
type minioEnv struct {
	op     *testenv.OIDCProvider
	minio  *testenv.MinIO
	proc   *proc
	base   string
	admin  string
	client *http.Client
	dir    string
	tokens map[string]string // user → ID token
}

const minioPolicies = `
@id("eng-uses-s3") permit (principal, action, resource) when { principal in Group::"eng" };
`

// minioUsers: alice, bob and carol are ordinary; mallory's verified email is a
// wildcard (issue 14.4); uma's email is not verified.
var minioUsers = []testenv.OIDCUser{
	{Sub: "alice", Email: "alice@ztp.test", Password: "pw-alice", Groups: []string{"eng", "readwrite"}},
	{Sub: "bob", Email: "bob@ztp.test", Password: "pw-bob", Groups: []string{"eng", "readwrite"}},
	{Sub: "carol", Email: "carol@ztp.test", Password: "pw-carol", Groups: []string{"eng", "readwrite"}},
	{Sub: "mallory", Email: "*@ztp.test", Password: "pw-mallory", Groups: []string{"eng", "readwrite"}},
	{Sub: "uma", Email: "uma@ztp.test", Password: "pw-uma", Groups: []string{"eng", "readwrite"}, EmailUnverified: true},
}

// reportsPolicy is the documented per-user prefix policy, templated on the
// email (the shape issue 14.4 attacked).
const reportsPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":"arn:aws:s3:::reports/{{.Email}}/*"}]}`

func startMinIOEnv(t *testing.T) *minioEnv {
	t.Helper()
	e := &minioEnv{dir: t.TempDir(), tokens: map[string]string{}}
	certDir := filepath.Join(e.dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	client := testenv.OIDCClient{ID: "ztproxy", Secret: "minio-secret", RedirectURIs: []string{"http://127.0.0.1/cb"}}
	// STS's minimum is 15 minutes and credentials never outlive the token.
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour,
		Clients: []testenv.OIDCClient{client}, Users: minioUsers})
	e.minio = testenv.StartMinIO(t, testenv.MinIOOptions{OIDC: e.op})
	e.minio.CreateBucket(t, "reports")
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.admin = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + public
	writeFile(t, filepath.Join(e.dir, "p.cedar"), minioPolicies)
	route := func(name, role, sign string) string {
		return fmt.Sprintf(`
  - name: %s
    host: 127.0.0.1
    path_prefix: /%s
    strip_prefix: true
    upstream: %q
    auth: bearer
    pass_identity_headers: false
    allow_path_parameters: true
    aws: {role: %s, sign: {service: s3, region: us-east-1%s}}`, name, name, e.minio.URL, role, sign)
	}
	writeFile(t, filepath.Join(e.dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy]}
store: {path: state.db}
risk: {enabled: false}
aws:
  region: us-east-1
  sts_endpoint: %q
  roles:
    - name: reports
      role_arn: "arn:aws:iam::123456789012:role/reports"
      mode: web_identity
      duration: 15m
      session_policy: '%s'
    - name: root-reports
      role_arn: "arn:aws:iam::123456789012:role/root-reports"
      mode: assume_role
      duration: 15m
      session_policy: '%s'
routes:%s%s%s
`, public, e.admin, e.base, e.op.Issuer, e.minio.URL, reportsPolicy, reportsPolicy,
		route("s3", "reports", ", unsigned_payload: true, max_buffered_body: 1048576"),
		route("s3signed", "reports", ", max_buffered_body: 1048576"),
		route("s3ar", "root-reports", "")))
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.MinIORootUser)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.MinIORootPassword)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(e.dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(e.dir, "none"))
	e.proc = startServe(t, filepath.Join(e.dir, "z.yaml"), e.admin, public)
	e.client = tlsClient(t, certDir, false)
	e.client.Timeout = 2 * time.Minute
	for _, u := range minioUsers {
		e.tokens[u.Sub] = e.op.CodeFlowTokens(t, client, e.op.User(t, u.Sub), "", false).IDToken
	}
	return e
}

// do sends a request as user through the proxy; rawPath is sent as it is.
func (e *minioEnv) do(t *testing.T, user, method, rawPath string, body io.Reader, size int64) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+rawPath, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(b), resp.Header
}

// TestAWSMinIOKeysAndBodies: S3 through an aws.sign route, verified by
// MinIO's own SigV4 check.
func TestAWSMinIOKeysAndBodies(t *testing.T) {
	e := startMinIOEnv(t)
	prefix := "/s3/reports/alice@ztp.test/"

	// Issue 14.1: keys with $ & + , : ; = @ (and the rest) failed with
	// SignatureDoesNotMatch. Every printable ASCII byte, sent percent-
	// encoded, must be stored under exactly that key and read back, or be
	// refused by the proxy's path rules before anything is signed: "%"
	// (an encoded "%" invites double decoding) and "\" (a separator to
	// some servers) are 400 bad_path on every route.
	t.Run("every printable ASCII byte in a key", func(t *testing.T) {
		var want []string
		for c := byte(0x20); c < 0x7F; c++ {
			if c == '/' {
				continue
			}
			key := "alice@ztp.test/k/a" + string(c) + "b"
			raw := prefix + "k/a" + url.PathEscape(string(c)) + "b"
			if c == ';' {
				raw = prefix + "k/a;b" // a path parameter, allowed on this route; %3B is refused
			}
			if c == '%' || c == '\\' {
				if code, body, _ := e.do(t, "alice", http.MethodPut, raw, strings.NewReader(key), int64(len(key))); code != 400 || !strings.Contains(body, "bad_path") {
					t.Errorf("PUT key byte %q: %d %s, want 400 bad_path", c, code, body)
				}
				continue
			}
			if code, body, _ := e.do(t, "alice", http.MethodPut, raw, strings.NewReader(key), int64(len(key))); code != 200 {
				t.Errorf("PUT key byte %q: %d %s", c, code, body)
				continue
			}
			if code, body, _ := e.do(t, "alice", http.MethodGet, raw, nil, 0); code != 200 || body != key {
				t.Errorf("GET key byte %q: %d %q", c, code, body)
			}
			want = append(want, key)
		}
		got := map[string]bool{}
		for _, k := range e.minio.Keys(t, "reports") {
			got[k] = true
		}
		for _, k := range want {
			if !got[k] {
				t.Errorf("MinIO has no object %q", k)
			}
		}
		raw := prefix + "k/a" + url.PathEscape("@") + "b"
		if code, _, _ := e.do(t, "alice", http.MethodHead, raw, nil, 0); code != 200 {
			t.Errorf("HEAD: %d", code)
		}
		if code, body, _ := e.do(t, "alice", http.MethodDelete, raw, nil, 0); code != 204 {
			t.Errorf("DELETE: %d %s", code, body)
		}
	})

	// Issue 14.2: `curl --http1.1 -T -` was signed with a content-length
	// but sent chunked, and S3 answered 411 MissingContentLength.
	t.Run("bodies of unknown length and beyond the buffer", func(t *testing.T) {
		small := bytes.Repeat([]byte("s"), 100<<10)
		big := bytes.Repeat([]byte("b"), 2<<20) // above max_buffered_body (1 MiB)
		for _, tc := range []struct {
			name, path string
			body       []byte
			chunked    bool
			want       int
		}{
			{"chunked within the buffer", "/s3signed/reports/alice@ztp.test/chunked-small", small, true, 200},
			{"sized above the buffer, unsigned_payload", "/s3/reports/alice@ztp.test/sized-big", big, false, 200},
			{"chunked above the buffer, unsigned_payload", "/s3/reports/alice@ztp.test/chunked-big", big, true, http.StatusLengthRequired},
			{"sized above the buffer, signed route", "/s3signed/reports/alice@ztp.test/signed-big", big, false, http.StatusRequestEntityTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader = bytes.NewReader(tc.body)
				size := int64(len(tc.body))
				if tc.chunked {
					body, size = io.MultiReader(body), -1 // hides the length: sent chunked
				}
				code, resp, _ := e.do(t, "alice", http.MethodPut, tc.path, body, size)
				if code != tc.want {
					t.Fatalf("PUT: %d %s", code, resp)
				}
				if tc.want != 200 {
					return
				}
				if code, got, _ := e.do(t, "alice", http.MethodGet, tc.path, nil, 0); code != 200 || len(got) != len(tc.body) {
					t.Fatalf("GET back: %d, %d bytes", code, len(got))
				}
			})
		}
	})

	t.Run("multipart upload, parts above the buffer", func(t *testing.T) {
		obj := "/s3/reports/alice@ztp.test/multi"
		code, body, _ := e.do(t, "alice", http.MethodPost, obj+"?uploads", nil, 0)
		id := between(body, "<UploadId>", "</UploadId>")
		if code != 200 || id == "" {
			t.Fatalf("create: %d %s", code, body)
		}
		var etags []string
		for i, part := range [][]byte{bytes.Repeat([]byte("1"), 5<<20), []byte("tail")} {
			_, _, h := e.do(t, "alice", http.MethodPut, fmt.Sprintf("%s?partNumber=%d&uploadId=%s", obj, i+1, url.QueryEscape(id)), bytes.NewReader(part), int64(len(part)))
			etags = append(etags, h.Get("ETag"))
		}
		var xml strings.Builder
		xml.WriteString("<CompleteMultipartUpload>")
		for i, tag := range etags {
			fmt.Fprintf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, tag)
		}
		xml.WriteString("</CompleteMultipartUpload>")
		if code, body, _ := e.do(t, "alice", http.MethodPost, obj+"?uploadId="+url.QueryEscape(id), strings.NewReader(xml.String()), int64(xml.Len())); code != 200 {
			t.Fatalf("complete: %d %s", code, body)
		}
		if code, got, _ := e.do(t, "alice", http.MethodGet, obj, nil, 0); code != 200 || len(got) != 5<<20+4 {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("HTTP/2 upload of unknown length", func(t *testing.T) {
		tr := e.client.Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = true
		h2 := &minioEnv{base: e.base, tokens: e.tokens, client: &http.Client{Transport: tr, Timeout: time.Minute}}
		req, _ := http.NewRequest(http.MethodPut, e.base+"/s3/reports/alice@ztp.test/h2", io.MultiReader(strings.NewReader("over h2")))
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		resp, err := h2.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("PUT over %s: %d", resp.Proto, resp.StatusCode)
		}
	})

	t.Run("assume_role with the proxy's key, session policy enforced", func(t *testing.T) {
		if code, body, _ := e.do(t, "bob", http.MethodPut, "/s3ar/reports/bob@ztp.test/x", strings.NewReader("x"), 1); code != 200 {
			t.Fatalf("own prefix: %d %s", code, body)
		}
		if code, _, _ := e.do(t, "bob", http.MethodGet, "/s3ar/reports/alice@ztp.test/multi", nil, 0); code != http.StatusForbidden {
			t.Fatalf("alice's prefix as bob: %d, want 403 from MinIO", code)
		}
	})

	t.Run("one STS call per user and role", func(t *testing.T) {
		// MinIO audits AssumeRoleWithWebIdentity as AssumeRoleSSOCommon.
		if n := len(e.minio.Audit("AssumeRoleSSOCommon")); n != 1 {
			t.Errorf("AssumeRoleWithWebIdentity calls = %d, want 1 (alice, cached)", n)
		}
		for _, a := range e.minio.Audit("PutObject", "GetObject") {
			if a.AccessKey == testenv.MinIORootUser || a.AccessKey == "" {
				t.Errorf("S3 call %s %s not made with minted credentials (key %q)", a.API.Name, a.API.Object, a.AccessKey)
			}
		}
	})
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
