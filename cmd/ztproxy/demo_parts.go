//go:build !ztproxy_nodemo

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"ztproxy/internal/demo"
	"ztproxy/internal/demo/op"
)

// selfCommand is how the user ran this binary, for commands the banners
// suggest: "go run ./cmd/ztproxy" when go run built it, else "ztproxy".
func selfCommand() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/ztproxy"
	}
	return "ztproxy"
}

func printDemoBanner(w io.Writer, s demoSettings, certDir, external, issuer string, users []op.User) {
	ca := filepath.Join(certDir, "ca.pem")
	self := selfCommand()
	dirFlag := ""
	if s.dir != defaultDemoDir() {
		dirFlag = " --dir " + s.dir
	}
	fmt.Fprintf(w, `
ztproxy demo — development setup, NOT for production
  working dir:   %s (config %s, policies %s, audit.log)
  identity:      %s (embedded development OpenID provider, loopback only)
  metrics:       http://%s/metrics

Open %s/ in a browser and sign in:
  alice  password %s   (group eng: allowed; /admin asks for a security key or passkey)
  bob    password %s   (group contractors: denied by policy)
The certificate is from the demo CA %s.
"%s certs trust --ca %s" prints how to trust it; or accept the browser's
warning: on localhost, browsers still allow security keys after that.

Then see %s/.ztp/whoami, or sign out at %s/.ztp/logout.
From a terminal:
  curl --cacert %s %s/status
  curl --cacert %s --cert %s --key %s %s/device   # device certificate (mTLS)
  %s demo keys list alice%s    # alice's security keys in this running demo
  %s demo risk show alice%s    # her risk profile; "demo risk flag alice --level watch --reason test" flags her
Stop with Ctrl-C. Before "ztproxy serve --config config.example.yaml", stop the demo: both use port 8443.

`, s.dir, demoConfigFile, demoPolicyFile, issuer, s.admin, external, users[0].Password, users[1].Password, ca,
		self, ca, external, external,
		ca, external, ca, filepath.Join(certDir, "client.pem"), filepath.Join(certDir, "client-key.pem"), external,
		self, dirFlag, self, dirFlag)
}

// cmdDemoApp runs the demo app alone, as the example upstream of
// config.example.yaml.
func cmdDemoApp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo app", stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the app (plain HTTP)")
	if err := fs.parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w (is another demo app, or something else, on %s?)", err, *listen)
	}
	srv := &http.Server{Handler: demo.AppHandler(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "ztproxy demo app on http://%s: an upstream that shows what the proxy sends it (NOT for production). Ctrl-C stops it.\n", ln.Addr())
	return serveUntilDone(ctx, srv, ln)
}

// serveUntilDone serves until ctx ends, then shuts down.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// cmdDemoIdP runs the demo's development OpenID provider alone, and keeps
// a bearer token of each user in a file, for trying bearer routes with
// config.example.yaml (issue 15.5).
func cmdDemoIdP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo idp", stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:8444", "loopback address of the provider; its issuer is http://ADDRESS")
	audience := fs.String("audience", "https://api.example.com", "aud of the bearer tokens (config.example.yaml's idps[0].audiences)")
	tokens := fs.String("tokens", "dev-idp", "directory for the token files USER.token")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of each token; files are renewed at half of it")
	redirect := fs.String("proxy", "https://localhost:8443", "external_url of a proxy that signs browsers in here (client ztproxy-demo)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *ttl < time.Minute {
		return usageError("--token-ttl must be at least 1m")
	}
	if err := os.MkdirAll(*tokens, 0o700); err != nil {
		return err
	}
	users := demoUsers()
	secret := randomWord()
	provider, err := startDemoOP(*listen, users, []op.Client{{ID: "ztproxy-demo", Secret: secret,
		RedirectURIs:           []string{*redirect + "/.ztp/callback"},
		PostLogoutRedirectURIs: []string{*redirect + "/.ztp/signed-out"}}}, nil)
	if err != nil {
		return err
	}
	defer provider.Close()
	if err := writeDemoTokens(provider, users, *audience, *tokens, *ttl); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `ztproxy demo idp — development OpenID provider, NOT for production
  issuer:  %s   (config.example.yaml: export ZTP_ISSUER=%s)
  users:   alice (group eng) password %s
           bob (group contractors) password %s
  tokens:  %s, %s: bearer tokens for %s, renewed every %s
  browser sign-in: client_id ztproxy-demo, client_secret %s, for %s
Ctrl-C stops it.
`, provider.Issuer, provider.Issuer, users[0].Password, users[1].Password,
		filepath.Join(*tokens, "alice.token"), filepath.Join(*tokens, "bob.token"), *audience, *ttl/2, secret, *redirect)
	tick := time.NewTicker(*ttl / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := writeDemoTokens(provider, users, *audience, *tokens, *ttl); err != nil {
				fmt.Fprintf(stderr, "ztproxy demo idp: renewing tokens: %v\n", err)
			}
		}
	}
}

// writeDemoTokens writes USER.token for every user, replacing each file
// atomically so that a reader never sees half a token.
func writeDemoTokens(p *op.Provider, users []op.User, audience, dir string, ttl time.Duration) error {
	for _, u := range users {
		tok, _, err := p.MintAccessToken(u.Username, audience, ttl)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, u.Username+".token")
		if err := os.WriteFile(path+".tmp", []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	return nil
}

// cmdDemoOperator runs `ztproxy keys` or `ztproxy risk` against the
// running demo: its config, and the demo's users by name (issue 15.12).
func cmdDemoOperator(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	verbs := map[string][]string{"keys": {"list", "remove"}, "risk": {"flag", "clear", "show"}}[group]
	verb, rest, err := verbOf("demo "+group, args, stdout, verbs...)
	if err != nil {
		return err
	}
	if helpRequested(rest) {
		printHelp(stdout, "demo "+group+" "+verb, nil)
		return errHelpShown
	}
	dir := defaultDemoDir()
	var pass []string
	for i := 0; i < len(rest); i++ {
		switch a := rest[i]; {
		case (a == "--dir" || a == "-dir") && i+1 < len(rest):
			dir = rest[i+1]
			i++
		case strings.HasPrefix(a, "--dir=") || strings.HasPrefix(a, "-dir="):
			dir = a[strings.Index(a, "=")+1:]
		default:
			pass = append(pass, a)
		}
	}
	configPath := filepath.Join(dir, demoConfigFile)
	issuer, err := demoIssuer(configPath)
	if err != nil {
		return fmt.Errorf("no demo in %s (%v): start one with \"%s demo\", or give its --dir", dir, err, selfCommand())
	}
	if len(pass) > 0 && !strings.HasPrefix(pass[0], "-") && !strings.ContainsAny(pass[0], "#@") {
		pass[0] = issuer + "#" + pass[0] // a demo user's name is its subject
	}
	full := append(append([]string{verb}, pass...), "--config", configPath)
	if group == "keys" {
		return cmdKeys(ctx, full, stdout, stderr)
	}
	return cmdRisk(ctx, full, stdout, stderr)
}

// demoIssuer reads the demo IdP's issuer from a demo config.
func demoIssuer(configPath string) (string, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return "", err
	}
	var c struct {
		IdPs []struct {
			Issuer string `yaml:"issuer"`
		} `yaml:"idps"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil || len(c.IdPs) == 0 || c.IdPs[0].Issuer == "" {
		return "", fmt.Errorf("%s is not a demo config", configPath)
	}
	return c.IdPs[0].Issuer, nil
}
