package config

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// scalarsOf parses src, expands it with env and returns every scalar
// value by YAML path as "tag value", with the expansion problems.
func scalarsOf(t *testing.T, src string, env func(string) (string, bool)) (map[string]string, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader([]byte(src))).Decode(&doc); err != nil {
		t.Fatalf("parsing %q: %v", src, err)
	}
	c := newCollector()
	expandTree(&doc, "", env, c)
	scalars := map[string]string{}
	walkPaths(&doc, "", func(path string, n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			scalars[path] = n.ShortTag() + " " + n.Value
		}
	})
	return scalars, problemLines(t, c.err())
}

// walkPaths calls fn for every node of the tree with its YAML path, as
// expandTree and the decoder name them (aliases are not followed).
func walkPaths(n *yaml.Node, path string, fn func(string, *yaml.Node)) {
	fn(path, n)
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			walkPaths(child, path, fn)
		}
	case yaml.SequenceNode:
		for i, child := range n.Content {
			walkPaths(child, indexPath(path, i), fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			keyPath := joinPath(path, key.Value)
			fn(keyPath+" (key)", key)
			walkPaths(n.Content[i+1], keyPath, fn)
		}
	}
}

// TestExpandScalars covers every expansion rule, one scalar at a time.
func TestExpandScalars(t *testing.T) {
	env := envOf(map[string]string{
		"HOST":  "app.example.com",
		"EMPTY": "",
		"PORT":  "8443",
		"YES":   "true",
		"NULL":  "null",
		"REF":   "${HOST}",
	})
	tests := []struct {
		name     string
		src      string
		want     map[string]string
		problems []string
	}{
		{"plain text", "a: b\n", map[string]string{"a": "!!str b"}, nil},
		{"set", "host: ${HOST}\n", map[string]string{"host": "!!str app.example.com"}, nil},
		{"two in one value", `listen: "${HOST}:${PORT}"`, map[string]string{"listen": "!!str app.example.com:8443"}, nil},
		{"default unused", "h: ${HOST:-other}", map[string]string{"h": "!!str app.example.com"}, nil},
		{"default for unset", "h: ${NOPE:-other.example.com}", map[string]string{"h": "!!str other.example.com"}, nil},
		{"default for empty", "h: ${EMPTY:-other}", map[string]string{"h": "!!str other"}, nil},
		{"default with colon and spaces", "u: ${NOPE:-http://a b}", map[string]string{"u": "!!str http://a b"}, nil},
		{"quoted empty stays an empty string", `h: "${NOPE:-}"`, map[string]string{"h": "!!str "}, nil},
		{"unquoted empty is null (the default)", "h: ${EMPTY}", map[string]string{"h": "!!null "}, nil},
		{"escaped dollar", "s: a$$b$${HOST}", map[string]string{"s": "!!str a$b${HOST}"}, nil},
		{"lone dollars", `p: "$5 and $HOST and $"`, map[string]string{"p": "!!str $5 and $HOST and $"}, nil},
		{"a value is not expanded again", "r: ${REF}", map[string]string{"r": "!!str ${HOST}"}, nil},
		{"integer field", "n: ${PORT}", map[string]string{"n": "!!int 8443"}, nil},
		{"quoted integer", `n: "${PORT}"`, map[string]string{"n": "!!int 8443"}, nil},
		{"boolean", "b: ${YES}", map[string]string{"b": "!!bool true"}, nil},
		{"null from a variable is text", "s: ${NULL}", map[string]string{"s": "!!str null"}, nil},
		{"explicit tag kept", "s: !!str ${PORT}", map[string]string{"s": "!!str 8443"}, nil},
		{"literal block", "s: |\n  at ${HOST}\n", map[string]string{"s": "!!str at app.example.com\n"}, nil},
		{"flow list", `l: ["${HOST}", "${PORT}"]`, map[string]string{"l[0]": "!!str app.example.com", "l[1]": "!!int 8443"}, nil},
		{"comments are not expanded", "# ${SECRET} and $$\na: b # ${SECRET}\n", map[string]string{"a": "!!str b"}, nil},
		{"anchor expanded once, where defined", "a: &x ${NOPE}\nb: *x\n", map[string]string{"a": "!!null "},
			[]string{"a (line 1): ${NOPE} is not set"}},
		{"merged mapping", "base: &b {k: \"${HOST}\"}\nother: {<<: *b}\n", map[string]string{"base.k": "!!str app.example.com"}, nil},
		{"unset", "a: ${ONE}\nb:\n  - ${TWO}\n", map[string]string{"a": "!!null ", "b[0]": "!!null "}, []string{
			"a (line 1): ${ONE} is not set",
			"b[0] (line 3): ${TWO} is not set",
		}},
		{"unterminated", `a: "${HOST"`, map[string]string{"a": "!!str ${HOST"}, []string{
			`a (line 1): unterminated "${HOST" (write $$ for a literal $)`,
		}},
		{"bad names", `a: "${} ${1X} ${A-B}"`, map[string]string{"a": "!!str   "}, []string{
			`a (line 1): invalid reference "${}": a name is letters, digits and _ (write $$ for a literal $)`,
			`a (line 1): invalid reference "${1X}": a name is letters, digits and _ (write $$ for a literal $)`,
			`a (line 1): invalid reference "${A-B}": a name is letters, digits and _ (write $$ for a literal $)`,
		}},
		{"keys are not expanded", "m:\n  ${HOST}: v\n", map[string]string{"m.${HOST}": "!!str v"}, []string{
			"m.${HOST} (line 2): keys are not expanded: ${...} may only appear in values",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := scalarsOf(t, tt.src, env)
			for path, want := range tt.want {
				if got[path] != want {
					t.Errorf("%s = %q, want %q", path, got[path], want)
				}
			}
			if diff := cmp.Diff(tt.problems, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExpansionCannotChangeStructure: issue 12.12. Expansion ran on the raw
// text before YAML parsing, so a secret was re-read as YAML: "\x41" inside
// a quoted value was unescaped to "A", and a value with a newline added
// keys to the document. Values are now expanded after parsing.
func TestExpansionCannotChangeStructure(t *testing.T) {
	escaped := `p\x41ss"w\nrd`
	injected := "x\"\nlisten: \"0.0.0.0:80\"\nadmin_listen: \"0.0.0.0:80"
	env := envOf(map[string]string{"ZTP_SECRET": escaped, "ZTP_HOST": injected})
	src := head + `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret: "${ZTP_SECRET}"}
routes:
  - name: app
    host: "${ZTP_HOST}"
    upstream: "http://127.0.0.1:8080"
    auth: public
`
	_, err := Parse([]byte(src), "testdata", Options{LookupEnv: env})
	// The host is refused as a host, and nothing else changed: listen is
	// still the file's own.
	want := []string{fmt.Sprintf("routes[0].host (line 9): %q: ", injected)}
	got := problemLines(t, err)
	if len(got) != 1 || len(got[0]) < len(want[0]) || got[0][:len(want[0])] != want[0] {
		t.Fatalf("problems = %q, want one starting %q", got, want[0])
	}

	src = head + publicRoute + `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret: "${ZTP_SECRET}"}
`
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.IdPs[0].ResolvedClientSecret; got != escaped {
		t.Errorf("client secret = %q, want %q unchanged", got, escaped)
	}
	if f.Listen != ":8443" || f.AdminListen != "127.0.0.1:9090" {
		t.Errorf("listeners changed: %q %q", f.Listen, f.AdminListen)
	}
}

// TestTypedFieldsFromEnv: an expanded scalar is decoded into the field's
// type, in block and in (quoted) flow style.
func TestTypedFieldsFromEnv(t *testing.T) {
	env := envOf(map[string]string{"N": "1024", "T": "7s", "PLAIN": "true", "LEVEL": "warn"})
	src := `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
insecure_plaintext: ${PLAIN}
server:
  read_header_timeout: ${T}
  max_body_bytes: ${N}
log: {level: "${LEVEL}"}
risk: {unknown_user_score: "${MISSING:-12}"}
` + publicRoute
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	if !f.InsecurePlaintext || f.Server.ReadHeaderTimeout != 7*time.Second || f.Server.MaxBodyBytes != 1024 ||
		f.Log.Level != "warn" || f.Risk.UnknownUserScore != 12 {
		t.Errorf("typed fields not decoded: plaintext %v, timeout %v, body %d, level %q, score %d",
			f.InsecurePlaintext, f.Server.ReadHeaderTimeout, f.Server.MaxBodyBytes, f.Log.Level, f.Risk.UnknownUserScore)
	}
	_, err = Parse([]byte(head+publicRoute+"server: {max_body_bytes: \"${T}\"}\n"), "testdata", Options{LookupEnv: env})
	if diff := cmp.Diff([]string{`server.max_body_bytes (line 7): must be an integer, not "7s"`}, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
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
