package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// MinIOVersion is the MinIO server module version the tests run, built with
// `go install github.com/minio/minio@<MinIOVersion>` into MinIOBinary's
// directory (.ci/run does it when the binary is missing).
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO root credentials: the proxy's own long-term key in assume_role tests.
const (
	MinIORootUser     = "ztproxyroot"
	MinIORootPassword = "ztproxy-root-secret"
	MinIORegion       = "us-east-1"
)

// MinIOBinary is where the cached MinIO server binary lives:
// $ZTPROXY_MINIO_BIN when set, else ~/.cache/ztproxy-minio/<version>/minio.
func MinIOBinary() string {
	return cachedProgram("ZTPROXY_MINIO_BIN", "ztproxy-minio", MinIOVersion, "minio")
}

// MinIOOptions configures StartMinIO.
type MinIOOptions struct {
	// OIDC, when set, enables STS AssumeRoleWithWebIdentity for ID tokens of
	// this OP with audience ClientID (default "ztproxy"); MinIO attaches the
	// policies named in the token's "groups" claim (built-in ones:
	// readwrite, readonly, writeonly, diagnostics, consoleAdmin).
	OIDC     *OIDCProvider
	ClientID string
}

// MinIO is a running MinIO server: S3 with full SigV4 verification and STS
// (AssumeRole for its root user, AssumeRoleWithWebIdentity for the OP's
// tokens). Every S3 and STS call it answers is in Audit.
type MinIO struct {
	URL  string // http://127.0.0.1:<port>, S3 and STS alike
	Port int

	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{}

	mu    sync.Mutex
	audit []MinIOAudit
}

// MinIOAudit is one entry of MinIO's audit webhook.
type MinIOAudit struct {
	API struct {
		Name       string `json:"name"`
		Bucket     string `json:"bucket"`
		Object     string `json:"object"`
		StatusCode int    `json:"statusCode"`
		InputBytes int64  `json:"rx"`
	} `json:"api"`
	AccessKey  string `json:"accessKey"`
	ParentUser string `json:"parentUser"`
	Error      string `json:"error"`
}

// StartMinIO starts the cached MinIO binary on a free loopback port with a
// fresh data directory and stops it when the test ends. Without the binary
// the test skips, or fails under CI.
func StartMinIO(t testing.TB, opts MinIOOptions) *MinIO {
	t.Helper()
	bin := MinIOBinary()
	if _, err := os.Stat(bin); err != nil {
		RequireComponent(t, "minio", fmt.Errorf("%s missing (go install github.com/minio/minio@%s, or run .ci/run): %w", bin, MinIOVersion, err))
	}
	m := &MinIO{log: newTailBuffer(64 << 10), done: make(chan struct{})}
	hook := m.startAuditReceiver(t)
	env := []string{
		"MINIO_ROOT_USER=" + MinIORootUser, "MINIO_ROOT_PASSWORD=" + MinIORootPassword,
		"MINIO_REGION=" + MinIORegion, "MINIO_BROWSER=off", "MINIO_UPDATE=off",
		"MINIO_AUDIT_WEBHOOK_ENABLE_ztp=on", "MINIO_AUDIT_WEBHOOK_ENDPOINT_ztp=" + hook,
	}
	if opts.OIDC != nil {
		clientID := opts.ClientID
		if clientID == "" {
			clientID = "ztproxy"
		}
		env = append(env,
			"MINIO_IDENTITY_OPENID_CONFIG_URL="+opts.OIDC.Issuer+"/.well-known/openid-configuration",
			"MINIO_IDENTITY_OPENID_CLIENT_ID="+clientID,
			"MINIO_IDENTITY_OPENID_CLAIM_NAME=groups")
	}
	m.Port = FreePort(t)
	m.URL = "http://127.0.0.1:" + strconv.Itoa(m.Port)
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", "127.0.0.1:"+strconv.Itoa(m.Port), t.TempDir())
	m.cmd.Env = append(os.Environ(), env...)
	m.cmd.SysProcAttr = childProcAttr()
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("testenv: starting minio: %v", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("testenv: minio output (tail):\n%s", m.log.String())
		}
	})
	if err := m.waitReady(60 * time.Second); err != nil {
		t.Fatalf("testenv: %v\n%s", err, m.log.String())
	}
	m.waitAudit(t)
	return m
}

// waitAudit waits until the audit webhook delivers: MinIO drops entries
// while its webhook target is still coming up.
func (m *MinIO) waitAudit(t testing.TB) {
	deadline := time.Now().Add(30 * time.Second)
	for len(m.Audit("ListBuckets")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: minio audit webhook silent\n%s", m.log.String())
		}
		m.Root(t, http.MethodGet, "/", "", nil)
		time.Sleep(100 * time.Millisecond)
	}
	m.mu.Lock()
	m.audit = nil
	m.mu.Unlock()
}

func (m *MinIO) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(m.URL + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("minio exited before it was ready (%v)", m.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not ready within %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startAuditReceiver serves MinIO's audit webhook and returns its URL.
func (m *MinIO) startAuditReceiver(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: audit receiver: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
		for {
			var e MinIOAudit
			if dec.Decode(&e) != nil {
				break
			}
			if e.API.Name != "" {
				m.mu.Lock()
				m.audit = append(m.audit, e)
				m.mu.Unlock()
			}
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

// Audit returns the audit entries received so far whose API name is one of
// names (all of them without names). Delivery is asynchronous: poll.
func (m *MinIO) Audit(names ...string) []MinIOAudit {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MinIOAudit
	for _, e := range m.audit {
		if len(names) == 0 || contains(names, e.API.Name) {
			out = append(out, e)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Stop stops the server (SIGTERM, then kill after 5 s): clients then get
// connection refused. Stopping twice is harmless.
func (m *MinIO) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// CreateBucket creates a bucket as the root user.
func (m *MinIO) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	resp := m.Root(t, http.MethodPut, "/"+bucket, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: minio create bucket %s: %d %s", bucket, resp.StatusCode, resp.Body)
	}
}

// Keys lists a bucket's object keys (ListObjectsV2, first 1000) as root.
func (m *MinIO) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	resp := m.Root(t, http.MethodGet, "/"+bucket, "list-type=2&encoding-type=url", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: minio list %s: %d %s", bucket, resp.StatusCode, resp.Body)
	}
	var list struct {
		Contents []struct{ Key string }
	}
	if err := xml.Unmarshal(resp.Body, &list); err != nil {
		t.Fatalf("testenv: minio list %s: %v", bucket, err)
	}
	keys := make([]string, 0, len(list.Contents))
	for _, c := range list.Contents {
		k, err := url.QueryUnescape(c.Key)
		if err != nil {
			t.Fatalf("testenv: minio list %s: key %q: %v", bucket, c.Key, err)
		}
		keys = append(keys, k)
	}
	return keys
}

// RootResponse is a response to a request Root or Signed sent.
type RootResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Root sends a request signed with the root credentials by the SDK's own
// signer (path encoded by the SDK's httpbinding rules), for set-up and
// checks independent of the code under test.
func (m *MinIO) Root(t testing.TB, method, path, rawQuery string, body []byte) RootResponse {
	t.Helper()
	return m.Signed(t, aws.Credentials{AccessKeyID: MinIORootUser, SecretAccessKey: MinIORootPassword}, method, path, rawQuery, body)
}

// Signed is Root with other credentials, e.g. ones minted through the
// proxy.
func (m *MinIO) Signed(t testing.TB, creds aws.Credentials, method, path, rawQuery string, body []byte) RootResponse {
	t.Helper()
	u, _ := url.Parse(m.URL)
	u.Path, u.RawPath, u.RawQuery = path, httpbinding.EscapePath(path, false), rawQuery
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: minio request: %v", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	err = v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", MinIORegion, time.Now(),
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		t.Fatalf("testenv: signing: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: minio %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("testenv: minio %s %s: %v", method, path, err)
	}
	return RootResponse{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}
}
