package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/identity"
	"ztproxy/internal/demo"
	"ztproxy/internal/demo/op"
)

const demoPolicies = `// Demo policies: engineers may use the app, and /admin with a security
// key or passkey verified by ztproxy; devices with the dev certificate may
// use /device, everyone may read /status.

@id("eng-uses-app")
@reason("the app is for engineers")
permit (principal, action, resource)
when { principal in Group::"eng" && (resource == Route::"app" || resource == Route::"admin") };

@id("admin-needs-security-key")
@step_up("webauthn")
@reason("the admin area needs your security key or passkey within the last 15 minutes")
forbid (principal, action, resource == Route::"admin")
unless { context.auth.amr.contains("webauthn") && context.auth.age_seconds < 900 };

@id("dev-laptop")
permit (principal, action, resource == Route::"device")
when { context.device.spiffe_id like "spiffe://ztproxy.dev/device/*" };

@id("status-is-public")
permit (principal, action == Action::"GET", resource == Route::"status");

@id("enrolled-laptop")
@reason("/laptop is for your own enrolled device with an encrypted disk")
permit (principal is User, action, resource == Route::"laptop")
when { context.device.enrolled && context.device.owner_matches && context.device.posture.disk_encrypted };
`

// cmdDemo runs the proxy on embedded defaults: dev certificates, a demo
// app, an embedded development OpenID provider with two users, and
// policies — nothing to install.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("demo", stderr)
	listen := fset.String("listen", "127.0.0.1:8443", "public listener")
	admin := fset.String("admin", "127.0.0.1:9090", "admin listener (metrics, health)")
	dir := fset.String("dir", filepath.Join(os.TempDir(), "ztproxy-demo"), "working directory for certificates, config and state")
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
	if _, err := os.Stat(filepath.Join(certDir, "device-ca.pem")); errors.Is(err, fs.ErrNotExist) {
		if _, err := certs.WriteDeviceCA(certs.DeviceCAOptions{Out: certDir, Organization: "ztproxy demo"}); err != nil {
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

	_, port, _ := net.SplitHostPort(*listen)
	external := "https://localhost:" + port
	users := []op.User{
		{Sub: "alice", Username: "alice", Email: "alice@demo.ztproxy.dev", Name: "Alice Engineer", Password: randomWord(), Groups: []string{"eng"}},
		{Sub: "bob", Username: "bob", Email: "bob@demo.ztproxy.dev", Name: "Bob Contractor", Password: randomWord(), Groups: []string{"contractors"}},
	}
	clientSecret := randomWord()
	// The library logs refused requests through the default logger; the
	// demo keeps its own output readable.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	provider, err := op.Start(op.Config{
		Addr: "127.0.0.1:0", Users: users,
		Clients: []op.Client{{ID: "ztproxy-demo", Secret: clientSecret,
			RedirectURIs:           []string{external + "/.ztp/callback"},
			PostLogoutRedirectURIs: []string{external + "/.ztp/signed-out"}}},
	})
	slog.SetDefault(prev)
	if err != nil {
		return err
	}
	defer provider.Close()

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
    client_id: ztproxy-demo
    client_secret: "${ZTP_DEMO_CLIENT_SECRET}"
    scopes: [openid, email, profile, groups, offline_access]
session:
  secrets: ["${ZTP_DEMO_SESSION_SECRET}"]
store: {path: demo-state.db}
devices: {enabled: true, ca_cert_file: certs/device-ca.pem, ca_key_file: certs/device-ca-key.pem}
log: {level: info, format: text}
audit: {output: %q}
routes:
  - {name: status, host: localhost, path_prefix: /status, upstream: %q, auth: public}
  - {name: device, host: localhost, path_prefix: /device, upstream: %q, auth: mtls}
  - {name: admin, host: localhost, path_prefix: /admin, upstream: %q, auth: browser}
  - {name: app, host: localhost, path_prefix: /, upstream: %q, auth: browser}
`, *listen, *admin, external, provider.Issuer, filepath.Join(*dir, "audit.log"), app, app, app, app)
	// Device trust: only alice's enrolled demo device reaches /laptop.
	cfg += fmt.Sprintf("  - {name: laptop, host: localhost, path_prefix: /laptop, upstream: %q, auth: browser}\n", app)
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	os.Setenv("ZTP_DEMO_CLIENT_SECRET", clientSecret)
	os.Setenv("ZTP_DEMO_SESSION_SECRET", randomWord()+randomWord())
	in, _, err := assemble(ctx, configPath, config.DefaultOptions(), assembleServe, stdout, stderr)
	if err != nil {
		printProblems(stderr, configPath, err)
		return exitCodeError(1)
	}
	defer in.close()
	device, err := demoDevice(ctx, in.devices, certDir, identity.UserID(provider.Issuer, users[0].Sub))
	if err != nil {
		return err
	}
	printDemoBanner(stdout, *dir, certDir, external, *admin, provider.Issuer, users)
	fmt.Fprint(stdout, device)
	return serve(ctx, configPath, in, config.DefaultOptions())
}

// randomWord is a random 22-character password or secret.
func randomWord() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func printDemoBanner(w io.Writer, dir, certDir, external, admin, issuer string, users []op.User) {
	ca := filepath.Join(certDir, "ca.pem")
	fmt.Fprintf(w, `
ztproxy demo — development setup, NOT for production
  working dir:   %s (config ztproxy-demo.yaml, policies demo.cedar, audit.log)
  identity:      %s (embedded development OpenID provider, loopback only)
  metrics:       http://%s/metrics

Open %s/ in a browser and sign in (the certificate is from the demo CA %s;
import it or accept the warning):
  alice  password %s   (group eng: allowed)
  bob    password %s   (group contractors: denied by policy)

Then see %s/.ztp/whoami, or sign out at %s/.ztp/logout.
%s/admin asks for a security key or passkey (WebAuthn, verified by ztproxy);
browsers allow that only without certificate warnings, so import the demo CA first.
From a terminal:
  curl --cacert %s %s/status
  curl --cacert %s --cert %s --key %s %s/device   # device certificate (mTLS)

`, dir, issuer, admin, external, ca, users[0].Password, users[1].Password, external, external, external,
		ca, external, ca, filepath.Join(certDir, "client.pem"), filepath.Join(certDir, "client-key.pem"), external)
}
