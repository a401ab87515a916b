package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/internal/demo"
)

const demoPolicies = `// Demo policies: engineers may use the app, devices with the dev
// certificate may use /device, everyone may read /status.

@id("eng-uses-app")
@reason("the app is for engineers")
permit (principal, action, resource == Route::"app")
when { principal in Group::"eng" };

@id("dev-laptop")
permit (principal, action, resource == Route::"device")
when { context.device.spiffe_id like "spiffe://ztproxy.dev/device/*" };

@id("status-is-public")
permit (principal, action == Action::"GET", resource == Route::"status");

@id("writes-need-mfa")
@step_up("mfa")
@reason("changes need a fresh second factor")
forbid (principal, action in [Action::"POST", Action::"PUT", Action::"DELETE"], resource == Route::"app")
unless { context.auth.mfa };
`

const demoAudience = "https://demo.ztproxy.dev/api"

// cmdDemo runs the proxy on embedded defaults: dev certificates, a demo
// app, a development token issuer, and policies — nothing to install.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("demo", stderr)
	listen := fset.String("listen", "127.0.0.1:8443", "public listener")
	admin := fset.String("admin", "127.0.0.1:9090", "admin listener (metrics, health)")
	dir := fset.String("dir", filepath.Join(os.TempDir(), "ztproxy-demo"), "working directory for certificates and config")
	if err := fset.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	certDir := filepath.Join(*dir, "certs")
	if _, err := os.Stat(filepath.Join(certDir, "ca.pem")); errors.Is(err, fs.ErrNotExist) {
		if _, err := certs.WriteDev(certs.DevOptions{Out: certDir}); err != nil {
			return err
		}
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	appSrv := &http.Server{Handler: demo.AppHandler(), ReadHeaderTimeout: 5 * time.Second}
	go appSrv.Serve(appLn)
	defer appSrv.Close()
	issuer, err := demo.StartIssuer("127.0.0.1:0", demoAudience)
	if err != nil {
		return err
	}
	defer issuer.Close()

	_, port, _ := net.SplitHostPort(*listen)
	external := "https://localhost:" + port
	configPath := filepath.Join(*dir, "ztproxy-demo.yaml")
	if err := os.WriteFile(filepath.Join(*dir, "demo.cedar"), []byte(demoPolicies), 0o600); err != nil {
		return err
	}
	app := "http://" + appLn.Addr().String()
	cfg := fmt.Sprintf(`# Written by "ztproxy demo". NOT for production.
listen: %q
admin_listen: %q
external_url: %q
tls:
  cert_file: certs/server.pem
  key_file: certs/server-key.pem
  client_ca_file: certs/ca.pem
  client_auth: request
policies: [demo.cedar]
idps:
  - name: demo
    issuer: %q
    audiences: [%q]
log: {level: info, format: text}
audit: {output: %q}
routes:
  - {name: status, host: localhost, path_prefix: /status, upstream: %q, auth: public}
  - {name: device, host: localhost, path_prefix: /device, upstream: %q, auth: mtls}
  - {name: app, host: localhost, path_prefix: /, upstream: %q, auth: bearer}
`, *listen, *admin, external, issuer.URL, demoAudience, filepath.Join(*dir, "audit.log"), app, app, app)
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	rt, err := config.LoadRuntime(configPath)
	if err != nil {
		printProblems(stderr, configPath, err)
		return exitCodeError(1)
	}
	tokens := map[string]string{}
	for _, u := range demo.Users {
		tok, err := issuer.Token(u, 12*time.Hour)
		if err != nil {
			return err
		}
		tokens[u.Sub] = tok
	}
	printDemoBanner(stdout, *dir, certDir, external, *admin, tokens)
	logger := newLogger(rt.File.Log, stderr)
	audit, closeAudit, err := newAuditLogger(rt.File.Audit.Output, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeAudit()
	return serve(ctx, configPath, rt, logger, audit)
}

func printDemoBanner(w io.Writer, dir, certDir, external, admin string, tokens map[string]string) {
	ca := filepath.Join(certDir, "ca.pem")
	fmt.Fprintf(w, `
ztproxy demo — development setup, NOT for production
  working dir:  %s (config ztproxy-demo.yaml, policies demo.cedar, audit.log)
  proxy:        %s   (TLS with the demo CA: %s)
  metrics:      http://%s/metrics

Demo users (tokens valid 12 h, from the demo issuer):
  alice  (groups eng, admins)   ALICE=%s
  bob    (group contractors)    BOB=%s

Try:
  curl --cacert %s %s/status
  curl --cacert %s -H "Authorization: Bearer $ALICE" %s/hello          # allowed: the app sees who you are
  curl --cacert %s -H "Authorization: Bearer $BOB" %s/hello            # denied by policy (403)
  curl --cacert %s -X POST -H "Authorization: Bearer $ALICE" %s/hello  # step-up required (401, RFC 9470)
  curl --cacert %s --cert %s --key %s %s/device                      # device certificate (mTLS)

`, dir, external, ca, admin, tokens["alice"], tokens["bob"],
		ca, external, ca, external, ca, external, ca, external,
		ca, filepath.Join(certDir, "client.pem"), filepath.Join(certDir, "client-key.pem"), external)
}
