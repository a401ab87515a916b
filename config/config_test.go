package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"ztproxy/authn"
	"ztproxy/proxy"
)

// cmpFile compares Files: locations by name, prefixes by value.
var cmpFile = []cmp.Option{
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	// Warnings depend on the mode of the checked-out test files and carry
	// lines only when parsed; secrets_test.go checks them.
	cmpopts.IgnoreFields(File{}, "Warnings"),
}

// noEnv is an empty environment, so that tests do not depend on the
// process environment.
func noEnv(string) (string, bool) { return "", false }

// envOf returns a LookupEnv over a fixed map.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func testdataDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// problemsOf returns the problems of err as "path: message" strings; it
// fails the test if err is not an *Errors.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	out := make([]string, len(errs.Problems))
	for i, p := range errs.Problems {
		out[i] = p.Path + ": " + p.Message
	}
	return out
}

func TestLoadValid(t *testing.T) {
	td := testdataDir(t)
	var hookPaths []string
	var hookLoc *time.Location
	opts := Options{
		LookupEnv: noEnv,
		CheckPolicies: func(paths []string, loc *time.Location) error {
			hookPaths, hookLoc = paths, loc
			return nil
		},
	}
	got, err := Load("testdata/valid.yaml", opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Mode:        ModeProxy,
		Listen:      ":8443",
		AdminListen: "127.0.0.1:9090",
		ExternalURL: "https://ztp.example.com",
		TLS: TLS{
			CertFile:     td + "/certs/server.crt",
			KeyFile:      td + "/certs/server.key",
			ClientCAFile: td + "/certs/client-ca.crt",
			ClientAuth:   ClientAuthRequest,
		},
		TrustedProxies: []string{"10.0.0.0/8", "192.168.1.7", "fd00::/8"},
		Timezone:       "Europe/Berlin",
		Policies:       []string{"policies/*.cedar", "policies/base.cedar"},
		IdPs: []IdP{
			{
				Name:         "corp",
				Issuer:       "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
				Audiences:    []string{"api-client"},
				GroupsClaim:  "cognito:groups",
				TokenUse:     "access",
				Claims:       []string{"department"},
				ClientID:     "web-client",
				ClientSecret: "not-a-real-secret",

				ResolvedClientSecret: "not-a-real-secret",
				Scopes:               []string{"openid", "email", "profile"},
				ExtraAuthParams:      map[string]string{"prompt": "select_account"},
				LogoutURL:            "https://auth.example.com/logout",
				StepUp:               &StepUp{ACRValues: "urn:example:mfa", MaxAge: 5 * time.Minute},
				JWKSRefreshInterval:  5 * time.Minute, JWKSMinRefetchInterval: 10 * time.Second, JWKSMaxStale: time.Hour,
			},
			{
				Name:                "partners",
				Issuer:              "https://partners.example.net",
				Audiences:           []string{"ztproxy"},
				JWKSURL:             "https://partners.example.net/keys",
				GroupsClaim:         "groups",
				Scopes:              []string{"openid", "email", "profile"},
				JWKSRefreshInterval: 2 * time.Minute, JWKSMinRefetchInterval: 30 * time.Second, JWKSMaxStale: 15 * time.Minute,
			},
		},
		Session: Session{
			CookieName:   "_ztp_session",
			CookieDomain: "example.com",
			Lifetime:     8 * time.Hour,
			IdleTimeout:  30 * time.Minute,
			Secrets:      []string{"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="},
			SecretKeys:   [][]byte{DecodeSecret("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=")},
		},
		Assertion: Assertion{TTL: 2 * time.Minute, JWKSRefreshInterval: 5 * time.Minute, JWKSMinRefetchInterval: 10 * time.Second, JWKSMaxStale: time.Hour},
		Server: Server{
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    65536,
			MaxBodyBytes:      10 << 20,
			ShutdownGrace:     30 * time.Second,
			UpstreamTransport: "lean",
		},
		Audit:    Audit{Output: "stderr"},
		Log:      Log{Level: "debug", Format: "text"},
		Store:    Store{Backend: "embedded", Path: td + "/ztproxy.db", TablePrefix: "ztproxy_", RevocationCacheTTL: 30 * time.Second},
		Risk:     DefaultRisk(),
		Caches:   Caches{VerifiedTokens: authn.DefaultTokenCacheSize, Assertions: proxy.DefaultAssertionCacheSize},
		Devices:  DefaultDevices(),
		WebAuthn: WebAuthn{Enabled: true, RPName: "ztproxy", EnrollMaxAge: 5 * time.Minute},
		Routes: []Route{
			{
				Name: "app", Host: "app.example.com", PathPrefix: "/", Upstream: "http://127.0.0.1:8080",
				Auth: AuthBrowser, IdP: "corp", PassIdentityHeaders: true, Timeout: 30 * time.Second, WebSocket: true,
			},
			{
				Name: "api", Host: "api.example.com", PathPrefix: "/v1", Upstream: "https://api.internal:8443/base",
				UpstreamCAFile: td + "/certs/upstream-ca.crt", UpstreamServerName: "api.internal",
				Auth: AuthBearer, IdP: "partners", PassIdentityHeaders: true, Timeout: 90 * time.Second, StripPrefix: true,
			},
			{
				Name: "admin", Host: "*.admin.example.com", PathPrefix: "/", Upstream: "http://10.1.2.3",
				Auth: AuthMTLS, PreserveHost: true, Timeout: 30 * time.Second,
			},
			{
				Name: "status", Host: "app.example.com", PathPrefix: "/healthz", Upstream: "http://127.0.0.1:8080",
				Auth: AuthPublic, PassIdentityHeaders: true, Timeout: 30 * time.Second,
			},
		},
		BaseDir:     td,
		Location:    berlin,
		PolicyFiles: []string{td + "/policies/admin.cedar", td + "/policies/base.cedar"},
		TrustedProxyPrefixes: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.168.1.7/32"),
			netip.MustParsePrefix("fd00::/8"),
		},
	}
	if diff := cmp.Diff(want, got, cmpFile...); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if len(got.Session.SecretKeys[0]) != 32 {
		t.Errorf("session key is %d bytes, want 32 (base64-decoded)", len(got.Session.SecretKeys[0]))
	}
	if diff := cmp.Diff(want.PolicyFiles, hookPaths); diff != "" {
		t.Errorf("CheckPolicies paths (-want +got):\n%s", diff)
	}
	if hookLoc == nil || hookLoc.String() != "Europe/Berlin" {
		t.Errorf("CheckPolicies location = %v, want Europe/Berlin", hookLoc)
	}

	// Validate on an already canonical File changes nothing.
	again := *got
	again.Routes = slices.Clone(got.Routes)
	if err := again.Validate(opts); err != nil {
		t.Fatalf("Validate of a loaded File: %v", err)
	}
	if diff := cmp.Diff(got, &again, cmpFile...); diff != "" {
		t.Errorf("Validate is not idempotent (-first +second):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	got := problemsOf(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "(file): open ") {
		t.Errorf("problems = %q, want one (file) problem", got)
	}
}

func TestDefaults(t *testing.T) {
	src := head + `
policies: [policies/base.cedar]
idps:
  - name: corp
    issuer: https://idp.example.com
    audiences: [x]
routes:
  - name: api
    host: api.example.com
    upstream: http://127.0.0.1:8080
    auth: bearer
`
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	wantRoute := Route{
		Name: "api", Host: "api.example.com", PathPrefix: "/", Upstream: "http://127.0.0.1:8080",
		Auth: AuthBearer, PassIdentityHeaders: true, Timeout: 30 * time.Second,
	}
	if diff := cmp.Diff(wantRoute, f.Routes[0]); diff != "" {
		t.Errorf("route defaults (-want +got):\n%s", diff)
	}
	wantIdP := DefaultIdP()
	wantIdP.Name, wantIdP.Issuer, wantIdP.Audiences = "corp", "https://idp.example.com", []string{"x"}
	if diff := cmp.Diff(wantIdP, f.IdPs[0]); diff != "" {
		t.Errorf("idp defaults (-want +got):\n%s", diff)
	}
	def := DefaultFile()
	if diff := cmp.Diff(def.Server, f.Server); diff != "" {
		t.Errorf("server defaults (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(def.Session, f.Session); diff != "" {
		t.Errorf("session defaults (-want +got):\n%s", diff)
	}
	if f.Mode != ModeProxy || f.Location != time.UTC || f.Assertion.TTL != time.Minute ||
		f.Audit.Output != "stdout" || f.Log != (Log{Level: "info", Format: "json"}) || f.TLS.ClientAuth != ClientAuthNone {
		t.Errorf("top-level defaults not applied: %+v", f)
	}
}

// TestNullKeepsDefaults checks that "key:" with no value is not a zero
// value but "use the default".
func TestNullKeepsDefaults(t *testing.T) {
	src := head + publicRoute + "session:\n  lifetime:\nlog:\n"
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if f.Session.Lifetime != 12*time.Hour || f.Log.Level != "info" {
		t.Errorf("lifetime = %s, log = %+v; want defaults", f.Session.Lifetime, f.Log)
	}
}

func TestSidecarMode(t *testing.T) {
	src := `mode: sidecar
listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://svc.example.com
insecure_plaintext: true
policies: [policies/base.cedar]
assertion:
  trusted_jwks: [https://ztp.example.com/.ztp/jwks.json, certs/server.crt]
sidecar:
  upstream: http://127.0.0.1:8080
`
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := &Sidecar{Upstream: "http://127.0.0.1:8080", Name: "service"}
	if diff := cmp.Diff(want, f.Sidecar); diff != "" {
		t.Errorf("sidecar (-want +got):\n%s", diff)
	}
	wantJWKS := []string{"https://ztp.example.com/.ztp/jwks.json", testdataDir(t) + "/certs/server.crt"}
	if diff := cmp.Diff(wantJWKS, f.Assertion.TrustedJWKS); diff != "" {
		t.Errorf("trusted_jwks (-want +got):\n%s", diff)
	}
}

func TestDecodeSecret(t *testing.T) {
	raw32 := strings.Repeat("k", 32)
	tests := []struct {
		name   string
		secret string
		want   int
	}{
		{"std base64 of 32 bytes", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", 32},
		{"url base64 unpadded", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80", 32},
		{"base64 of fewer than 32 bytes counts raw", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 32},
		{"raw text", raw32 + "!", 33},
		{"short", "short", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(DecodeSecret(tt.secret)); got != tt.want {
				t.Errorf("len(DecodeSecret(%q)) = %d, want %d", tt.secret, got, tt.want)
			}
		})
	}
}

func TestErrorsFormat(t *testing.T) {
	err := &Errors{Problems: []Problem{
		{Path: "routes[2].upsteam", Message: "unknown key", Line: 14},
		{Path: "listen", Message: "required"},
	}}
	want := "routes[2].upsteam (line 14): unknown key\nlisten: required"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestMain(m *testing.M) {
	// The policy glob tests rely on a stable working directory.
	if _, err := os.Stat("testdata/valid.yaml"); err != nil {
		panic("run the config tests from the package directory")
	}
	os.Exit(m.Run())
}
