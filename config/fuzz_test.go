package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse checks that Parse never panics, and that it returns either a
// File or an *Errors with at least one problem, never both or neither.
func FuzzParse(f *testing.F) {
	valid, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(valid),
		head + publicRoute,
		"",
		"- a\n",
		"mode: sidecar\nsidecar: {upstream: \"http://127.0.0.1\"}\n",
		head + "routes: [\n",
		head + publicRoute + "log: &l {<<: *l}\n",
		head + "routes:\n  - &a {name: a, host: a.example.com, auth: public, upstream: \"http://x\"}\n  - {<<: *a, name: b}\n",
		"listen: ${A:-:1}\nadmin_listen: $${B}\nexternal_url: ${",
		"idps: [{name: x, extra_auth_params: {a: [1]}, step_up: {max_age: 1x}}]\n",
		"server: {max_header_bytes: 0x10, max_body_bytes: -9223372036854775808}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := envOf(map[string]string{"ZTP_TEST_SESSION_SECRET": "0123456789abcdef0123456789abcdef"})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "testdata", Options{LookupEnv: env})
		if err == nil {
			if file == nil {
				t.Fatal("Parse returned neither a File nor an error")
			}
			return
		}
		if file != nil {
			t.Fatal("Parse returned a File with an error")
		}
		var errs *Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error is %T, want *Errors", err)
		}
		if len(errs.Problems) == 0 {
			t.Fatal("*Errors without problems")
		}
		for _, p := range errs.Problems {
			if p.Path == "" || p.Message == "" {
				t.Fatalf("problem without path or message: %+v", p)
			}
		}
	})
}

// FuzzExpand checks the property behind issue 12.12: expanding ${NAME}
// references, whatever the variables hold, never changes the set of YAML
// paths of the document (nor any node's kind, nor any key), leaves
// scalars without a "$" alone, and substitutes a value verbatim, without
// expanding it again.
func FuzzExpand(f *testing.F) {
	seeds := []struct{ doc, value string }{
		{"a: ${X}\n", "x\nlisten: \"0.0.0.0:80\""},
		{"a: \"${X}\"\nb: [${X}]\n", `p\x41ss" ]} {`},
		{"a: &x ${X}\nb: *x\nc: {<<: {k: ${X}}}\n", "${X}"},
		{"s: |\n  ${X}\n  $$\n", "- item\n- item"},
		{"${X}: v\nl: [\"${X:-d}\", '${Y}']\n", ""},
		{"n: ${X}\nb: ${X}\n", "0x10"},
		{"# ${X}\na: $${X} ${X\n", "~"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.doc), s.value)
	}
	f.Fuzz(func(t *testing.T, data []byte, value string) {
		var doc yaml.Node
		if yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc) != nil {
			return
		}
		before := shapeOf(&doc)
		plain := map[*yaml.Node]string{}
		whole := map[*yaml.Node]bool{}
		walkPaths(&doc, "", func(path string, n *yaml.Node) {
			if n.Kind != yaml.ScalarNode || strings.HasSuffix(path, " (key)") {
				return // keys are in the shape: they must not change at all
			}
			if !strings.Contains(n.Value, "$") {
				plain[n] = n.Value
			}
			if n.Value == "${X}" {
				whole[n] = true
			}
		})
		lookup := func(string) (string, bool) { return value, true }
		expandTree(&doc, "", lookup, newCollector())
		if after := shapeOf(&doc); after != before {
			t.Fatalf("expansion changed the document's paths:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		for n, v := range plain {
			if n.Value != v {
				t.Fatalf("scalar without $ changed: %q → %q", v, n.Value)
			}
		}
		for n := range whole {
			if n.Value != value {
				t.Fatalf("${X} expanded to %q, want the value %q verbatim", n.Value, value)
			}
		}
	})
}

// shapeOf lists every path of the tree with its node kind, and every key.
func shapeOf(doc *yaml.Node) string {
	var b strings.Builder
	walkPaths(doc, "", func(path string, n *yaml.Node) {
		fmt.Fprintf(&b, "%q %d\n", path, n.Kind)
	})
	return b.String()
}
