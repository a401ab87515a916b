//go:build !ztproxy_nodemo

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/identity"
	"ztproxy/internal/demo"
	"ztproxy/internal/demo/op"
	"ztproxy/store"
)

// The files of the demo's working directory.
const (
	demoConfigFile  = "ztproxy-demo.yaml"
	demoStateFile   = "demo-state.db"
	demoPolicyFile  = "demo.cedar"
	demoClientFile  = "client-secret"
	demoSessionFile = "session-secret"
)

const demoPolicies = `// Demo policies: engineers may use the app, and /admin with a security
// key or passkey verified by ztproxy; devices with the dev certificate may
// use /device, everyone may read /status. A @reason on a permit tells a
// denied user who the route is for.

@id("eng-uses-app")
@reason("the app is for engineers (group eng)")
permit (principal in Group::"eng", action, resource == Route::"app");

@id("eng-uses-admin")
@reason("the admin area is for engineers (group eng)")
permit (principal in Group::"eng", action, resource == Route::"admin");

// Scoped to the people a permit allows: nobody else is asked for a key
// only to be denied afterwards.
@id("admin-needs-security-key")
@step_up("webauthn")
@reason("the admin area needs your security key or passkey within the last 15 minutes")
forbid (principal in Group::"eng", action, resource == Route::"admin")
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

// demoSettings are the demo's addresses and directory.
type demoSettings struct {
	listen, admin, idp, dir string
}

// cmdDemo runs the proxy on embedded defaults: dev certificates, a demo
// app, an embedded development OpenID provider with two users, and
// policies — nothing to install. Its sub-commands run the pieces alone or
// operator commands against a running demo.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "app":
			return cmdDemoApp(ctx, args[1:], stdout, stderr)
		case "idp":
			return cmdDemoIdP(ctx, args[1:], stdout, stderr)
		case "keys", "risk":
			return cmdDemoOperator(ctx, args[0], args[1:], stdout, stderr)
		}
	}
	fset := newFlags("demo", stdout, stderr)
	listen := fset.String("listen", "127.0.0.1:8443", "public listener; the demo is at https://localhost:PORT")
	admin := fset.String("admin", "127.0.0.1:9090", "admin listener (metrics, health)")
	idp := fset.String("idp-listen", "", "the development OpenID provider (default: the public port + 1, 127.0.0.1:8444); user ids contain it, so keep it the same across restarts")
	dir := fset.String("dir", defaultDemoDir(), "working directory for certificates, config and state")
	if err := fset.parse(args); err != nil {
		return err
	}
	s := demoSettings{listen: *listen, admin: *admin, idp: *idp, dir: *dir}
	if s.idp == "" {
		var err error
		if s.idp, err = nextPort(s.listen); err != nil {
			return usageError("--listen: " + err.Error())
		}
	}
	// Issue 15.2: nothing is written, and nothing started, while another
	// demo runs here or holds an address.
	if err := demoPreflight(s); err != nil {
		return err
	}
	return runDemo(ctx, s, stdout, stderr)
}

func defaultDemoDir() string { return filepath.Join(os.TempDir(), "ztproxy-demo") }

// nextPort is addr with its port plus one: the demo IdP's default address.
func nextPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return "", fmt.Errorf("port %q: give --idp-listen", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}

// demoPreflight refuses to start while another demo holds the working
// directory (its state file is locked) or any of the addresses is taken,
// and says where that demo is.
func demoPreflight(s demoSettings) error {
	state := filepath.Join(s.dir, demoStateFile)
	if held, _ := store.ProbeBolt(state); held {
		where := ""
		if u := runningDemoURL(s.dir); u != "" {
			where = " at " + u
		}
		return fmt.Errorf("another ztproxy demo is already running%s with the working directory %s; use that one, or stop it first (Ctrl-C in its terminal). To run a second demo, give it its own --dir, --listen, --admin and --idp-listen", where, s.dir)
	}
	for _, a := range []struct{ flag, addr string }{{"listen", s.listen}, {"admin", s.admin}, {"idp-listen", s.idp}} {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			return fmt.Errorf("%s (--%s) is in use, perhaps by another ztproxy demo or serve: stop it, or choose another address with --%s: %w", a.addr, a.flag, a.flag, err)
		}
		ln.Close()
	}
	return nil
}

// runningDemoURL is the external URL in a demo directory's config, or "".
func runningDemoURL(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, demoConfigFile))
	if err != nil {
		return ""
	}
	var c struct {
		ExternalURL string `yaml:"external_url"`
	}
	if yaml.Unmarshal(data, &c) != nil {
		return ""
	}
	return c.ExternalURL
}

// runDemo writes the demo's files, starts the app and the OpenID provider
// and serves the proxy until ctx ends.
func runDemo(ctx context.Context, s demoSettings, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	certDir := filepath.Join(s.dir, "certs")
	if _, err := os.Stat(filepath.Join(certDir, "ca.pem")); errors.Is(err, fs.ErrNotExist) {
		if _, err := certs.WriteDev(certs.DevOptions{Out: certDir}); err != nil {
			return err
		}
	}
	clientSecret, err := demoSecret(filepath.Join(s.dir, demoClientFile))
	if err != nil {
		return err
	}
	if _, err := demoSecret(filepath.Join(s.dir, demoSessionFile)); err != nil {
		return err
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

	_, port, _ := net.SplitHostPort(s.listen)
	external := "https://localhost:" + port
	users := demoUsers()
	backchannel, err := demoCAClient(filepath.Join(certDir, "ca.pem"))
	if err != nil {
		return err
	}
	provider, err := startDemoOP(s.idp, users, []op.Client{{ID: "ztproxy-demo", Secret: clientSecret,
		RedirectURIs:           []string{external + "/.ztp/callback"},
		PostLogoutRedirectURIs: []string{external + "/.ztp/signed-out"},
		// "Sign out everywhere" on the provider's /account page ends the
		// proxy sessions too (issue 17).
		BackchannelLogoutURI: external + "/.ztp/backchannel-logout"}}, backchannel)
	if err != nil {
		return err
	}
	defer provider.Close()

	configPath := filepath.Join(s.dir, demoConfigFile)
	if err := os.WriteFile(filepath.Join(s.dir, demoPolicyFile), []byte(demoPolicies), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(configPath, []byte(demoConfig(s, external, provider.Issuer, "http://"+appLn.Addr().String())), 0o600); err != nil {
		return err
	}
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
	printDemoBanner(stdout, s, certDir, external, provider.Issuer, users)
	fmt.Fprint(stdout, device)
	return serve(ctx, configPath, in, config.DefaultOptions())
}

// demoUsers are alice and bob with fresh passwords. Their subjects are
// their names, so with the demo's stable issuer their user ids are the
// same after every restart (issue 15.3): keys enrolled earlier still match.
func demoUsers() []op.User {
	return []op.User{
		{Sub: "alice", Username: "alice", Email: "alice@demo.ztproxy.dev", Name: "Alice Engineer", Password: randomWord(), Groups: []string{"eng"}},
		{Sub: "bob", Username: "bob", Email: "bob@demo.ztproxy.dev", Name: "Bob Contractor", Password: randomWord(), Groups: []string{"contractors"}},
	}
}

// startDemoOP starts the embedded OpenID provider at addr, quietly: the
// library logs refused requests through the default logger.
func startDemoOP(addr string, users []op.User, clients []op.Client, backchannel *http.Client) (*op.Provider, error) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	defer slog.SetDefault(prev)
	return op.Start(op.Config{Addr: addr, Users: users, Clients: clients, BackchannelClient: backchannel})
}

// demoCAClient is an HTTP client that trusts the demo's development CA,
// for the provider's back-channel logout calls to the proxy.
func demoCAClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificates", caFile)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// demoSecret returns the secret kept in path, creating it (0600) on first
// use, so that operator commands can load the demo's config without the
// demo's environment, and sessions survive a restart.
func demoSecret(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(data) >= 22 {
		return string(data), nil
	}
	secret := randomWord() + randomWord()
	return secret, os.WriteFile(path, []byte(secret), 0o600)
}

// demoConfig is the demo's configuration file.
func demoConfig(s demoSettings, external, issuer, app string) string {
	return fmt.Sprintf(`# Written by "ztproxy demo". NOT for production.
listen: %q
admin_listen: %q
external_url: %q
tls:
  cert_file: certs/server.pem
  key_file: certs/server-key.pem
  client_ca_file: certs/ca.pem
  client_auth: request
policies: [%s]
idps:
  - name: demo
    issuer: %q
    client_id: ztproxy-demo
    client_secret_file: %s
    scopes: [openid, email, profile, groups, offline_access]
session:
  secrets_file: %s
store: {path: %s}
risk: {flush_interval: 2s}
devices: {enabled: true, ca_cert_file: certs/device-ca.pem, ca_key_file: certs/device-ca-key.pem}
log: {level: info, format: text}
audit: {output: %q}
routes:
  - {name: status, host: localhost, path_prefix: /status, upstream: %q, auth: public}
  - {name: device, host: localhost, path_prefix: /device, upstream: %q, auth: mtls}
  - {name: admin, host: localhost, path_prefix: /admin, upstream: %q, auth: browser}
  - {name: app, host: localhost, path_prefix: /, upstream: %q, auth: browser}
  - {name: laptop, host: localhost, path_prefix: /laptop, upstream: %q, auth: browser}
`, s.listen, s.admin, external, demoPolicyFile, issuer, demoClientFile, demoSessionFile, demoStateFile,
		filepath.Join(s.dir, "audit.log"), app, app, app, app, app)
}
