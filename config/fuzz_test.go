package config

import (
	"errors"
	"os"
	"testing"
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
