package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

// TestBoundaryRouteSettings covers the route keys of issues 12.2
// (allow_path_parameters) and 12.6 (allowed_origins).
func TestBoundaryRouteSettings(t *testing.T) {
	route := func(extra string) string {
		return "routes:\n  - {name: app, host: app.example.com, upstream: \"http://127.0.0.1:8080\", auth: public" + extra + "}\n"
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"path parameters opt-in", route(", allow_path_parameters: true"), nil},
		{"a prefix with ;", route(", path_prefix: \"/app;v=1\""), []string{
			`routes[0].path_prefix: "/app;v=1": must not contain ";": requests are routed on the path without ;parameters`,
		}},
		{"allowed origins", route(`, websocket: true, allowed_origins: ["https://portal.example.com", "HTTPS://Other.Example.com:443", "http://localhost:8080"]`), nil},
		{"allowed origins need websocket", route(`, allowed_origins: ["https://portal.example.com"]`), []string{
			"routes[0].allowed_origins: only used with websocket: true",
		}},
		{"bad origins", route(`, websocket: true, allowed_origins: ["https://*.corp.test", "https://portal.example.com/", "portal.example.com", "null", "wss://x.example.com"]`), []string{
			`routes[0].allowed_origins[0]: "https://*.corp.test": must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`,
			`routes[0].allowed_origins[1]: "https://portal.example.com/": must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`,
			`routes[0].allowed_origins[2]: "portal.example.com": must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`,
			`routes[0].allowed_origins[3]: "null": must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`,
			`routes[0].allowed_origins[4]: "wss://x.example.com": must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(head+tt.yaml), "testdata", Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	f, err := Parse([]byte(head+route(`, websocket: true, allow_path_parameters: true, allowed_origins: ["HTTPS://Other.Example.com:443"]`)), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Routes[0].AllowedOrigins; len(got) != 1 || got[0] != "https://other.example.com" {
		t.Errorf("allowed_origins not canonical: %q", got)
	}
	r, _, err := buildRoute(f.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	if !r.AllowPathParameters || len(r.AllowedOrigins) != 1 {
		t.Errorf("route not built with the settings: %+v", r)
	}
}

// TestSidecarPathParameters: the implicit route of sidecar mode takes
// allow_path_parameters from the sidecar block.
func TestSidecarPathParameters(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	src := `mode: sidecar
listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://svc.example.com
insecure_plaintext: true
policies: [policies/base.cedar]
assertion:
  trusted_jwks: [` + jwksPath + `]
sidecar: {upstream: "http://127.0.0.1:8080", allow_path_parameters: true}
`
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	if r := rt.Proxy.Routes[0]; r.Name != "service" || !r.AllowPathParameters {
		t.Errorf("implicit route: %+v", r)
	}
}
