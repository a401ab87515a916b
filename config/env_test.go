package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{
		"HOST":  "app.example.com",
		"EMPTY": "",
		"PORT":  "8443",
	})
	tests := []struct {
		name     string
		src      string
		want     string
		problems []string
	}{
		{"plain text", "a: b\n", "a: b\n", nil},
		{"set", "host: ${HOST}\n", "host: app.example.com\n", nil},
		{"two on a line", "listen: ${HOST}:${PORT}\n", "listen: app.example.com:8443\n", nil},
		{"default unused", "host: ${HOST:-other}\n", "host: app.example.com\n", nil},
		{"default for unset", "host: ${NOPE:-other.example.com}\n", "host: other.example.com\n", nil},
		{"default for empty", "host: ${EMPTY:-other}\n", "host: other\n", nil},
		{"empty default", "host: \"${NOPE:-}\"\n", "host: \"\"\n", nil},
		{"default with colon and spaces", "u: ${NOPE:-http://a b}\n", "u: http://a b\n", nil},
		{"empty but set", "host: \"${EMPTY}\"\n", "host: \"\"\n", nil},
		{"escaped dollar", "secret: a$$b$${HOST}\n", "secret: a$b${HOST}\n", nil},
		{"lone dollar", "price: $5 and $HOST and $\n", "price: $5 and $HOST and $\n", nil},
		{"trailing dollar", "a: $", "a: $", nil},
		{"comment lines untouched", "  # set ${SECRET} and $$\nhost: ${HOST}\n", "  # set ${SECRET} and $$\nhost: app.example.com\n", nil},
		{"unset", "a: ${ONE}\nb: ${TWO}\nc: ${ONE}\n", "a: \nb: \nc: \n", []string{
			"(env) (line 1): ${ONE} is not set",
			"(env) (line 2): ${TWO} is not set",
		}},
		{"unterminated", "a: ${HOST\nb: ok\n", "a: ${HOST\nb: ok\n", []string{
			`(env) (line 1): unterminated "${HOST" (write $$ for a literal $)`,
		}},
		{"bad names", "a: ${} ${1X} ${A-B}\n", "a:   \n", []string{
			`(env) (line 1): invalid reference "${}": a name is letters, digits and _ (write $$ for a literal $)`,
			`(env) (line 1): invalid reference "${1X}": a name is letters, digits and _ (write $$ for a literal $)`,
			`(env) (line 1): invalid reference "${A-B}": a name is letters, digits and _ (write $$ for a literal $)`,
		}},
		{"windows line endings", "a: ${HOST}\r\nb: ${HOST}\r\n", "a: app.example.com\r\nb: app.example.com\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector()
			got := string(expandEnv([]byte(tt.src), env, c))
			if got != tt.want {
				t.Errorf("expandEnv(%q) = %q, want %q", tt.src, got, tt.want)
			}
			if diff := cmp.Diff(tt.problems, problemLines(t, c.err())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

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
		want := []string{
			"(env) (line 6): ${SECRET} is not set",
			"session.secrets[0] (line 6): must be at least 32 bytes (got 0); generate one with: openssl rand -base64 32",
			"(env) (line 8): ${UPSTREAM} is not set",
			"routes[0].upstream (line 8): required: an absolute http(s) URL",
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
