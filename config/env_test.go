package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnvInParse checks expansion end to end: values and defaults land in
// the File, and missing variables are reported with every other problem.
func TestEnvInParse(t *testing.T) {
	src := `listen: ":${PORT:-8443}"
admin_listen: "${ADMIN}"
external_url: https://${HOST}
insecure_plaintext: true
session:
  secrets: ["${SECRET}"]
routes:
  - {name: app, host: "${HOST}", upstream: "${UPSTREAM}", auth: public}
`
	t.Run("all set", func(t *testing.T) {
		env := envOf(map[string]string{
			"ADMIN": "127.0.0.1:9090", "HOST": "ztp.example.com",
			"SECRET": "0123456789abcdef0123456789abcdef", "UPSTREAM": "http://127.0.0.1:8080",
		})
		f, err := Parse([]byte(src), "testdata", Options{LookupEnv: env})
		if err != nil {
			t.Fatal(err)
		}
		if f.Listen != ":8443" || f.AdminListen != "127.0.0.1:9090" || f.Routes[0].Host != "ztp.example.com" ||
			f.Session.Secrets[0] != "0123456789abcdef0123456789abcdef" {
			t.Errorf("expansion not applied: %+v", f)
		}
	})
	t.Run("missing", func(t *testing.T) {
		env := envOf(map[string]string{"ADMIN": "127.0.0.1:9090", "HOST": "ztp.example.com"})
		_, err := Parse([]byte(src), "testdata", Options{LookupEnv: env})
		// Each unset variable is reported at the value that uses it, and
		// validation does not repeat the problem for that value.
		want := []string{
			"session.secrets[0] (line 6): ${SECRET} is not set",
			"routes[0].upstream (line 8): ${UPSTREAM} is not set",
		}
		if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("process environment", func(t *testing.T) {
		t.Setenv("ZTP_CONFIG_TEST_HOST", "env.example.com")
		src := head + `routes:
  - {name: app, host: "${ZTP_CONFIG_TEST_HOST}", upstream: "http://127.0.0.1", auth: public}
`
		f, err := Parse([]byte(src), "testdata", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Routes[0].Host != "env.example.com" {
			t.Errorf("host = %q, want env.example.com", f.Routes[0].Host)
		}
	})
}
