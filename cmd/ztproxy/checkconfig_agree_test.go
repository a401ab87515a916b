package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"ztproxy/internal/testenv"
)

// agreeBlocks is a complete configuration that uses every file serve
// reads at start-up, as top-level blocks a case can replace. {PUBLIC} and
// {ADMIN} are the case's free ports.
var agreeBlocks = []struct{ key, text string }{
	{"mode", ""},
	{"listen", `listen: "127.0.0.1:{PUBLIC}"`},
	{"admin_listen", `admin_listen: "127.0.0.1:{ADMIN}"`},
	{"external_url", `external_url: "https://localhost:{PUBLIC}"`},
	{"tls", `tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}`},
	{"policies", `policies: [p.cedar]`},
	{"idps", `idps:
  - {name: corp, issuer: "https://idp.example.com", audiences: [ztproxy], client_id: ztproxy, client_secret_file: secrets/client}`},
	{"session", `session: {secrets_file: secrets/session}`},
	{"assertion", `assertion: {signing_key_file: signing-key.pem}`},
	{"risk", `risk: {geoip_database: geo.mmdb}`},
	{"store", `store: {path: state.db}`},
	{"audit", `audit: {output: audit.log}`},
	{"aws", ""},
	{"sidecar", ""},
	{"routes", `routes:
  - {name: app, host: localhost, upstream: "http://127.0.0.1:1", auth: browser}
  - {name: api, host: api.localhost, upstream: "https://127.0.0.1:1", upstream_ca_file: certs/ca.pem, auth: bearer}`},
}

// agreeCase is a configuration made from agreeBlocks and good files with
// some replaced.
type agreeCase struct {
	name   string
	files  map[string]string // path → content replacing the good file
	blocks map[string]string // key → block replacing the good one
	env    []string
	ok     bool // both commands succeed
}

// sidecarBlocks turn the good configuration into a sidecar trusting
// jwks.json.
var sidecarBlocks = map[string]string{
	"mode":      "mode: sidecar",
	"sidecar":   `sidecar: {upstream: "http://127.0.0.1:1"}`,
	"assertion": "assertion: {signing_key_file: signing-key.pem, trusted_jwks: [jwks.json]}",
	"routes":    "",
}

func withSidecar(extra map[string]string) map[string]string {
	blocks := map[string]string{}
	for k, v := range sidecarBlocks {
		blocks[k] = v
	}
	for k, v := range extra {
		blocks[k] = v
	}
	return blocks
}

// TestCheckConfigAgreesWithServe is the property behind issue 12.11:
// check-config said OK for configs serve refused (a garbage or empty
// client CA, a garbage cert_file). For a table of broken configurations,
// one broken thing each, check-config fails exactly when serve fails to
// start, and both name the same problem; the good configurations pass
// both, serve reaching /readyz.
func TestCheckConfigAgreesWithServe(t *testing.T) {
	good := agreeFiles(t)
	keyPEM, certPEM := good["certs/server-key.pem"], good["certs/server.pem"]
	otherKey := ecKeyPEM(t, elliptic.P256())
	cases := []agreeCase{
		{name: "good", ok: true},
		{name: "good: empty store file", files: map[string]string{"state.db": ""}, ok: true},
		{name: "good: sidecar with a trusted JWKS file", blocks: withSidecar(nil), ok: true},
		{name: "good: aws roles", blocks: map[string]string{"aws": `aws:
  region: eu-west-1
  roles: [{name: analyst, role_arn: "arn:aws:iam::123456789012:role/analyst", mode: web_identity}]`}, ok: true},

		{name: "cert_file garbage", files: map[string]string{"certs/server.pem": "garbage\n"}},
		{name: "cert_file empty", files: map[string]string{"certs/server.pem": ""}},
		{name: "cert_file holds a key", files: map[string]string{"certs/server.pem": keyPEM}},
		{name: "cert_file unreadable", blocks: map[string]string{"tls": `tls: {cert_file: /proc/self/mem, key_file: certs/server-key.pem}`}},
		{name: "key_file garbage", files: map[string]string{"certs/server-key.pem": "garbage\n"}},
		{name: "key_file empty", files: map[string]string{"certs/server-key.pem": ""}},
		{name: "key_file holds a certificate", files: map[string]string{"certs/server-key.pem": certPEM}},
		{name: "key_file does not match", files: map[string]string{"certs/server-key.pem": otherKey}},
		{name: "client_ca_file garbage", files: map[string]string{"certs/ca.pem": "garbage\n"}},
		{name: "client_ca_file empty", files: map[string]string{"certs/ca.pem": ""}},
		{name: "client_ca_file holds a key", files: map[string]string{"certs/ca.pem": keyPEM}},
		{name: "client_ca_file unreadable", blocks: map[string]string{"tls": `tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: /proc/self/mem, client_auth: request}`}},
		{name: "upstream_ca_file garbage", files: map[string]string{"upstream-ca.pem": "garbage\n"},
			blocks: map[string]string{"routes": `routes: [{name: api, host: api.localhost, upstream: "https://127.0.0.1:1", upstream_ca_file: upstream-ca.pem, auth: public}]`}},
		{name: "upstream_ca_file empty", files: map[string]string{"upstream-ca.pem": ""},
			blocks: map[string]string{"routes": `routes: [{name: api, host: api.localhost, upstream: "https://127.0.0.1:1", upstream_ca_file: upstream-ca.pem, auth: public}]`}},
		{name: "upstream_ca_file holds a key", files: map[string]string{"upstream-ca.pem": keyPEM},
			blocks: map[string]string{"routes": `routes: [{name: api, host: api.localhost, upstream: "https://127.0.0.1:1", upstream_ca_file: upstream-ca.pem, auth: public}]`}},
		{name: "signing key garbage", files: map[string]string{"signing-key.pem": "garbage\n"}},
		{name: "signing key empty", files: map[string]string{"signing-key.pem": ""}},
		{name: "signing key is RSA", files: map[string]string{"signing-key.pem": rsaKeyPEM(t)}},
		{name: "signing key is P-384", files: map[string]string{"signing-key.pem": ecKeyPEM(t, elliptic.P384())}},
		{name: "signing key holds a certificate", files: map[string]string{"signing-key.pem": certPEM}},
		{name: "trusted_jwks garbage", files: map[string]string{"jwks.json": "garbage"}, blocks: withSidecar(nil)},
		{name: "trusted_jwks empty", files: map[string]string{"jwks.json": ""}, blocks: withSidecar(nil)},
		{name: "trusted_jwks holds a PEM certificate", files: map[string]string{"jwks.json": certPEM}, blocks: withSidecar(nil)},
		{name: "geoip garbage", files: map[string]string{"geo.mmdb": "garbage"}},
		{name: "geoip empty", files: map[string]string{"geo.mmdb": ""}},
		{name: "geoip holds a PEM certificate", files: map[string]string{"geo.mmdb": certPEM}},
		{name: "policy syntax error", files: map[string]string{"p.cedar": "permit (principal action, resource);\n"}},
		{name: "policy glob matches nothing", blocks: map[string]string{"policies": "policies: [nope/*.cedar]"}},
		{name: "client_secret_file empty", files: map[string]string{"secrets/client": "\n"}},
		{name: "client_secret_file missing", blocks: map[string]string{"idps": `idps: [{name: corp, issuer: "https://idp.example.com", client_id: ztproxy, client_secret_file: secrets/nope}]`}},
		{name: "client_secret and client_secret_file", blocks: map[string]string{"idps": `idps: [{name: corp, issuer: "https://idp.example.com", client_id: ztproxy, client_secret: x, client_secret_file: secrets/client}]`}},
		{name: "secrets_file empty", files: map[string]string{"secrets/session": ""}},
		{name: "secrets_file with a short secret", files: map[string]string{"secrets/session": "too-short\n"}},
		{name: "secrets_file unreadable", blocks: map[string]string{"session": `session: {secrets_file: /proc/self/mem}`}},
		{name: "secrets and secrets_file", blocks: map[string]string{"session": `session: {secrets: ["0123456789abcdef0123456789abcdef"], secrets_file: secrets/session}`}},
		{name: "unset variable", blocks: map[string]string{"external_url": `external_url: "https://${ZTP_AGREE_UNSET}:{PUBLIC}"`}},
		{name: "store file garbage", files: map[string]string{"state.db": strings.Repeat("garbage ", 1024)}},
		{name: "store path is a directory", files: map[string]string{"state.db/x": ""}},
		{name: "store directory missing", blocks: map[string]string{"store": "store: {path: nope/state.db}"}},
		{name: "audit output is a directory", files: map[string]string{"audit.log/x": ""}},
		{name: "aws profile missing", env: []string{"AWS_PROFILE=ztproxy-agree-nope"}, blocks: map[string]string{"aws": `aws:
  region: eu-west-1
  roles: [{name: analyst, role_arn: "arn:aws:iam::123456789012:role/analyst", mode: assume_role}]`}},
		{name: "timezone unknown", blocks: map[string]string{"mode": "timezone: Mars/Olympus"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, admin := writeAgreeCase(t, good, c)
			env := append([]string{"AWS_CONFIG_FILE=" + filepath.Join(filepath.Dir(cfg), "aws-config"),
				"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(filepath.Dir(cfg), "aws-credentials"),
				"AWS_EC2_METADATA_DISABLED=true"}, c.env...)
			checkCode, checkOut := runWithEnv(t, env, "check-config", "--config", cfg)
			started, serveOut := serveStarts(t, env, cfg, admin)
			if (checkCode == 0) != started {
				t.Fatalf("check-config exit %d but serve started=%v\ncheck-config:\n%s\nserve:\n%s", checkCode, started, checkOut, serveOut)
			}
			if started != c.ok {
				t.Fatalf("started=%v, want %v\ncheck-config:\n%s\nserve:\n%s", started, c.ok, checkOut, serveOut)
			}
			if !c.ok {
				// The same problem, at the same YAML path, from both.
				first := firstProblem(t, checkOut)
				if !strings.Contains(serveOut, first) {
					t.Errorf("serve does not report check-config's %q\ncheck-config:\n%s\nserve:\n%s", first, checkOut, serveOut)
				}
			}
		})
	}
}

var problemLine = regexp.MustCompile(`(?m)^  (\S+ \(line \d+\)|\S+): `)

// firstProblem returns the "path (line N)" of check-config's first problem.
func firstProblem(t *testing.T, out string) string {
	t.Helper()
	m := problemLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no problem line in:\n%s", out)
	}
	return m[1]
}

// agreeFiles makes the good files: dev certificates, a policy, secret
// files, an assertion signing key, the JWKS of a front proxy and a GeoIP
// database.
func agreeFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if code, out := runZtproxy(t, "certs", "dev", "--out", dir); code != 0 {
		t.Fatal(out)
	}
	files := map[string]string{
		"p.cedar":         "permit (principal, action, resource);\n",
		"secrets/client":  "agree-client-secret\n",
		"secrets/session": "0123456789abcdef0123456789abcdef\n",
		"aws-config":      "",
		"aws-credentials": "",
	}
	for _, name := range []string{"ca.pem", "server.pem", "server-key.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files["certs/"+name] = string(data)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	files["signing-key.pem"] = pkcs8PEM(t, key)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "front", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	files["jwks.json"] = string(jwks)
	files["geo.mmdb"] = tinyMMDB(t)
	return files
}

// writeAgreeCase writes the case's files and configuration into a new
// directory and returns the configuration's path and the admin address.
func writeAgreeCase(t *testing.T, good map[string]string, c agreeCase) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range good {
		if _, replaced := c.files[name]; !replaced {
			writeFile(t, filepath.Join(dir, name), content)
		}
	}
	for name, content := range c.files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	public := fmt.Sprint(testenv.FreePort(t))
	admin := fmt.Sprint(testenv.FreePort(t))
	var cfg strings.Builder
	for _, b := range agreeBlocks {
		text := b.text
		if replaced, ok := c.blocks[b.key]; ok {
			text = replaced
		}
		if text != "" {
			cfg.WriteString(text + "\n")
		}
	}
	src := strings.NewReplacer("{PUBLIC}", public, "{ADMIN}", admin).Replace(cfg.String())
	path := filepath.Join(dir, "ztproxy.yaml")
	writeFile(t, path, src)
	return path, "127.0.0.1:" + admin
}

// serveStarts runs `ztproxy serve` until its admin /readyz answers 200
// (true) or it exits (false), and stops it.
func serveStarts(t *testing.T, env []string, cfg, admin string) (bool, string) {
	t.Helper()
	cmd := exec.Command(ztproxyBinary(t), "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false, out.String()
		default:
		}
		if resp, err := client.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, out.String()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve neither started nor exited:\n%s", out.String())
	return false, ""
}

// syncBuffer is an output buffer that may be read while a process writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ecKeyPEM returns a new EC private key on curve, PKCS #8 PEM.
func ecKeyPEM(t *testing.T, curve elliptic.Curve) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pkcs8PEM(t, key)
}

// rsaKeyPEM returns a new RSA private key, PKCS #8 PEM.
func rsaKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pkcs8PEM(t, key)
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// tinyMMDB returns a one-network GeoIP2-City-shaped database.
func tinyMMDB(t *testing.T) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("81.0.0.0/8")
	if err := tree.Insert(network, mmdbtype.Map{"location": mmdbtype.Map{"latitude": mmdbtype.Float64(52.52), "longitude": mmdbtype.Float64(13.40)}}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if _, err := tree.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
