package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"ztproxy/upstream"
)

// TestUpstreamTransport (issue 12.1): the operator's escape hatch from the
// lean upstream transport — a global default, a per-route override, and
// check-config rejecting anything else.
func TestUpstreamTransport(t *testing.T) {
	t.Run("problems", func(t *testing.T) {
		yaml := head + `server: {upstream_transport: fast}
routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: public, upstream_transport: Standard}
`
		_, err := Parse([]byte(yaml), "testdata", Options{LookupEnv: noEnv})
		want := []string{
			`server.upstream_transport: must be lean or standard, not "fast"`,
			`routes[0].upstream_transport: must be lean, standard or empty (inherit server.upstream_transport), not "Standard"`,
		}
		if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	for _, tc := range []struct {
		name, server string
		want         []upstream.Mode // per route: inherit, lean, standard
	}{
		{"default is lean", "", []upstream.Mode{"lean", "lean", "standard"}},
		{"global standard", "server: {upstream_transport: standard}\n", []upstream.Mode{"standard", "lean", "standard"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := head + tc.server + `routes:
  - {name: inherit, host: app.example.com, path_prefix: /a, upstream: "http://127.0.0.1:8080", auth: public}
  - {name: lean, host: app.example.com, path_prefix: /b, upstream: "http://127.0.0.1:8080", auth: public, upstream_transport: lean}
  - {name: std, host: app.example.com, path_prefix: /c, upstream: "http://127.0.0.1:8080", auth: public, upstream_transport: standard}
`
			f, err := Parse([]byte(yaml), "testdata", Options{LookupEnv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			rt, err := Build(f)
			if err != nil {
				t.Fatal(err)
			}
			var got []upstream.Mode
			for _, r := range rt.Proxy.Routes {
				got = append(got, r.UpstreamTransport)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("transports (-want +got):\n%s", diff)
			}
		})
	}
}
