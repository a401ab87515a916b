package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// demoOnlyModules are linked only by the demo (its OpenID provider is
// zitadel/oidc, which brings the rest). golang-jwt is not listed: the
// production code links it through go-webauthn (FIDO metadata).
var demoOnlyModules = []string{
	"github.com/zitadel/oidc/v3", "github.com/zitadel/schema", "github.com/go-chi/chi/v5",
	"github.com/gorilla/securecookie", "github.com/rs/cors", "github.com/muhlemmer/gu",
	"github.com/muhlemmer/httpforwarded",
}

// TestProductionBuildHasNoDemo: issue 19, the production binary linked the
// demo's OpenID provider (zitadel/oidc, go-chi, gorilla/securecookie,
// rs/cors), code that must never serve production traffic. The build the
// Dockerfile and `make release` use (-tags ztproxy_nodemo) leaves it out,
// and its `demo` command says so.
func TestProductionBuildHasNoDemo(t *testing.T) {
	// No -trimpath (the Dockerfile's): the same flags as ztproxyBinary, so
	// only the packages the tag changes are compiled again.
	bin := filepath.Join(t.TempDir(), "ztproxy")
	build := exec.Command("go", "build", "-tags", "ztproxy_nodemo", "-o", bin, ".")
	build.Dir = filepath.Join(testenv.RepoRoot(t), "cmd", "ztproxy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags ztproxy_nodemo: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, mod := range demoOnlyModules {
		if strings.Contains(string(out), "\t"+mod+"\t") {
			t.Errorf("the production build links %s:\n%s", mod, out)
		}
	}
	if !strings.Contains(string(out), "-tags=ztproxy_nodemo") {
		t.Errorf("build settings do not record the tag:\n%s", out)
	}
	demo := exec.Command(bin, "demo")
	msg, err := demo.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "this ztproxy build has no demo") {
		t.Errorf("ztproxy demo in the production build: %v\n%s", err, msg)
	}
	if out, err := exec.Command(bin, "healthcheck", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage: ztproxy healthcheck") {
		t.Errorf("healthcheck --help: %v\n%s", err, out)
	}
}

// TestDefaultBuildKeepsDemo: `go run ./cmd/ztproxy demo` (the README's first
// command) still has the demo: the default build links it.
func TestDefaultBuildKeepsDemo(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", ztproxyBinary(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\tgithub.com/zitadel/oidc/v3\t") {
		t.Errorf("the default build lost the demo's OpenID provider:\n%s", out)
	}
}

// TestHealthcheck: issue 19, the distroless image has no shell or wget, so
// exec health checks could not work. `ztproxy healthcheck` probes /readyz
// on the admin listener itself: exit 0 when ready, 1 when the listener is
// down, answers 503, or hangs past --timeout.
func TestHealthcheck(t *testing.T) {
	dir := t.TempDir()
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	adminPort := testenv.FreePort(t)
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	cfg := filepath.Join(dir, "ztproxy.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
listen: %q
admin_listen: "0.0.0.0:%d"
external_url: "http://%s"
insecure_plaintext: true
policies: [p.cedar]
store: {path: state.db}
audit: {output: audit.log}
routes:
  - {name: status, host: 127.0.0.1, path_prefix: /, upstream: "http://127.0.0.1:1", auth: public}
`, public, adminPort, public))
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	startServe(t, cfg, admin, public)

	t.Run("ready via --admin", func(t *testing.T) {
		if code, out := runZtproxy(t, "healthcheck", "--admin", admin); code != 0 || !strings.Contains(out, "ready") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("ready via --config (wildcard host probed on loopback)", func(t *testing.T) {
		if code, out := runZtproxy(t, "healthcheck", "--config", cfg, "--quiet"); code != 0 || out != "" {
			t.Errorf("exit %d\n%q", code, out)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		down := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		if code, out := runZtproxy(t, "healthcheck", "--admin", down); code != 1 || !strings.Contains(out, "not ready") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("503", func(t *testing.T) {
		draining := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}))
		defer draining.Close()
		if code, out := runZtproxy(t, "healthcheck", "--admin", strings.TrimPrefix(draining.URL, "http://")); code != 1 || !strings.Contains(out, "503") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("hung listener times out", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		start := time.Now()
		code, out := runZtproxy(t, "healthcheck", "--admin", ln.Addr().String(), "--timeout", "300ms")
		if code != 1 || !strings.Contains(out, "did not answer within 300ms") || time.Since(start) > 10*time.Second {
			t.Errorf("exit %d after %v\n%s", code, time.Since(start), out)
		}
	})
	t.Run("bad flags are a usage error", func(t *testing.T) {
		if code, _ := runZtproxy(t, "healthcheck", "--timeout", "5m"); code != 2 {
			t.Errorf("exit %d", code)
		}
	})
}
