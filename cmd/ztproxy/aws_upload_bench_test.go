package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/stsdouble"
	"ztproxy/internal/testenv"
)

// BenchmarkAWSSignedUpload1GiB measures the real binary's memory while a
// 1 GiB upload goes through an aws.sign S3 route (issue 14.2: bodies were
// buffered whole to hash them). It reports the proxy's peak RSS growth
// (VmHWM after − VmRSS before; target < 64 MiB) and throughput. The
// upstream checks the framing and the payload hash mode. Run with
// -bench AWSSignedUpload -benchtime 1x.
func BenchmarkAWSSignedUpload1GiB(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(b, "certs", "dev", "--out", certDir); code != 0 {
		b.Fatal(out)
	}
	op := testenv.StartOIDC(b, testenv.OIDCOptions{IDTokenTTL: time.Hour,
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "s", RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Users:   []testenv.OIDCUser{{Sub: "alice", Email: "alice@ztp.test", Password: "pw", Groups: []string{"eng"}}}})
	sts := stsdouble.Start(b, stsdouble.Config{AccountID: "123456789012",
		AccessKeys: map[string]string{"AKIAPROXYBENCH000001": "bench-secret"},
		Roles:      []stsdouble.Role{{ARN: "arn:aws:iam::123456789012:role/up"}}})
	var got struct {
		n           int64
		length, sha string
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.n, _ = io.Copy(io.Discard, r.Body)
		got.length, got.sha = r.Header.Get("Content-Length"), r.Header.Get("X-Amz-Content-Sha256")
	}))
	b.Cleanup(up.Close)
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	writeFile(b, filepath.Join(dir, "p.cedar"), `permit (principal, action, resource) when { principal in Group::"eng" };`)
	writeFile(b, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps: [{name: corp, issuer: %q, audiences: [ztproxy]}]
store: {path: state.db}
risk: {enabled: false}
aws:
  region: us-east-1
  sts_endpoint: %q
  roles: [{name: up, role_arn: "arn:aws:iam::123456789012:role/up", mode: assume_role}]
routes:
  - {name: s3, host: 127.0.0.1, upstream: %q, auth: bearer, pass_identity_headers: false,
     aws: {role: up, sign: {service: s3, region: us-east-1, unsigned_payload: true}}}
`, public, admin, public, op.Issuer, sts.URL, up.URL))
	b.Setenv("AWS_ACCESS_KEY_ID", "AKIAPROXYBENCH000001")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "bench-secret")
	b.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	p := startServe(b, filepath.Join(dir, "z.yaml"), admin, public)
	client := tlsClient(b, certDir, false)
	client.Timeout = 10 * time.Minute
	token := op.CodeFlowTokens(b, op.Clients[0], op.User(b, "alice"), "", false).IDToken
	put := func(n int64) {
		req, _ := http.NewRequest(http.MethodPut, "https://"+public+"/bucket/big", io.LimitReader(zeroReader{}, n))
		req.ContentLength = n
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || got.n != n || got.length != strconv.FormatInt(n, 10) || (got.sha == "UNSIGNED-PAYLOAD") != (n > 8<<20) {
			b.Fatalf("upload: %d, upstream got %d bytes, Content-Length %q, payload %q", resp.StatusCode, got.n, got.length, got.sha)
		}
	}
	put(1 << 20) // warm: credentials minted, connections up
	before := procStatusKiB(b, p.cmd.Process.Pid, "VmRSS")
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		put(size)
	}
	b.StopTimer()
	peak := procStatusKiB(b, p.cmd.Process.Pid, "VmHWM")
	b.ReportMetric(float64(peak-before)/1024, "MiB-rss-growth")
}

// procStatusKiB reads a "Vm…: N kB" field of /proc/<pid>/status.
func procStatusKiB(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
