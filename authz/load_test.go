package authz

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

func TestNewReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name  string
		files []PolicyFile
		want  []string // substrings of the error, one per problem
	}{{
		name: "every parse error with file and line",
		files: []PolicyFile{
			file("a.cedar", "permit (principal, action, resource);\n\n@id(\"x\")\npermit (principal, action, resource)\nwhen { context.x ==  };\n"+
				"permit (principal, action, resource);\n   forbid (principal, actio, resource);\n"),
			file("b.cedar", `permit (principal, action, resource) when { "abc };`),
		},
		want: []string{
			"a.cedar:5:23: ",
			"a.cedar:7:28: ",
			"b.cedar:1:45: ",
		},
	}, {
		name: "duplicate ids across files",
		files: []PolicyFile{
			file("a.cedar", `@id("p") permit (principal, action, resource);`),
			file("b.cedar", "\n"+`@id("p") forbid (principal, action, resource);`),
		},
		want: []string{`b.cedar:2:1: duplicate policy id "p"`},
	}, {
		name: "explicit id colliding with a generated id",
		files: []PolicyFile{
			file("a.cedar", `permit (principal, action, resource);`),
			file("b.cedar", `@id("a.cedar:0") forbid (principal, action, resource);`),
		},
		want: []string{`b.cedar:1:1: duplicate policy id "a.cedar:0"`},
	}, {
		name: "invalid step_up values",
		files: []PolicyFile{file("s.cedar", `
@id("sms") @step_up("sms") forbid (principal, action, resource);
@id("empty-acr") @step_up("acr:") forbid (principal, action, resource);
@id("bare") @step_up forbid (principal, action, resource);
@id("on-permit") @step_up("mfa") permit (principal, action, resource);
@id("ok") @step_up("acr:gold") forbid (principal, action, resource);`)},
		want: []string{
			`s.cedar:2:1: policy "sms": invalid @step_up("sms")`,
			`s.cedar:3:1: policy "empty-acr": invalid @step_up("acr:")`,
			`s.cedar:4:1: policy "bare": invalid @step_up("")`,
			`s.cedar:5:1: policy "on-permit": @step_up is only meaningful on a forbid policy`,
		},
	}, {
		name:  "empty id",
		files: []PolicyFile{file("e.cedar", `@id("") permit (principal, action, resource);`)},
		want:  []string{"e.cedar:1:1: empty @id"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Policies: tt.files})
			if err == nil {
				t.Fatalf("New succeeded with %d policies, want an error", e.PolicyCount())
			}
			lines := strings.Split(err.Error(), "\n")[1:] // after the "authz: invalid policies:" header
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestStatementErrorPositionsMatchWholeFile checks that re-parsing a file
// statement by statement reports the first error where parsing the whole
// file does.
func TestStatementErrorPositionsMatchWholeFile(t *testing.T) {
	texts := []string{
		"permit (principal, action, resource);\n  // a comment; with a semicolon\n@reason(\"a; b\") permit (principal, action resource);",
		"permit (principal, action, resource); permit (principal, action, resource) when { 1 + };",
		"permit (principal, action, resource) when { context.x like \"é;\" };\n\tforbid (principal, action, resource) when { ! };",
		"permit (principal, action, resource);\npermit (principal",
	}
	for _, text := range texts {
		_, wholeErr := parseList("f.cedar", []byte(text))
		if wholeErr == nil {
			t.Fatalf("%q parsed", text)
		}
		want := positionedError("f.cedar", wholeErr, 1, 1).Error()
		_, errs := parseFile(file("f.cedar", text))
		if len(errs) == 0 {
			t.Fatalf("parseFile(%q) found no errors", text)
		}
		if diff := cmp.Diff(want, errs[0].Error()); diff != "" {
			t.Errorf("first error of %q (-whole file +by statement):\n%s", text, diff)
		}
	}
}

func TestNewGeneratedIDsAndCount(t *testing.T) {
	e := newEngine(t,
		file("a.cedar", `permit (principal, action, resource) when { false }; @id("named") permit (principal, action, resource) when { false };`),
		file("b.cedar", `permit (principal, action, resource);`),
	)
	if got := e.PolicyCount(); got != 3 {
		t.Errorf("PolicyCount = %d, want 3", got)
	}
	var ids []string
	for _, id := range e.index.anyRoute.ids {
		ids = append(ids, string(id))
	}
	if diff := cmp.Diff([]string{"a.cedar:0", "named", "b.cedar:0"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestNewWithoutPolicies(t *testing.T) {
	e := newEngine(t)
	if e.PolicyCount() != 0 {
		t.Errorf("PolicyCount = %d, want 0", e.PolicyCount())
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.cedar")
	b := filepath.Join(dir, "b.cedar")
	for path, text := range map[string]string{a: "permit (principal, action, resource);", b: "// empty\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("reads in order", func(t *testing.T) {
		got, err := LoadFiles([]string{b, a})
		if err != nil {
			t.Fatalf("LoadFiles: %v", err)
		}
		want := []PolicyFile{
			{Name: b, Text: []byte("// empty\n")},
			{Name: a, Text: []byte("permit (principal, action, resource);")},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LoadFiles (-want +got):\n%s", diff)
		}
	})
	t.Run("names every missing path", func(t *testing.T) {
		missing1 := filepath.Join(dir, "missing1.cedar")
		missing2 := filepath.Join(dir, "missing2.cedar")
		_, err := LoadFiles([]string{a, missing1, missing2})
		if err == nil {
			t.Fatal("LoadFiles succeeded, want an error")
		}
		for _, p := range []string{missing1, missing2} {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
		}
	})
}

func FuzzNew(f *testing.F) {
	f.Add([]byte(decidePolicies))
	f.Add([]byte(everyKeyPolicy))
	f.Add([]byte(`@id("a") @step_up("acr:x") forbid (principal in Group::"g", action, resource is Route in Route::"r") unless { context.auth.mfa };`))
	f.Add([]byte(`permit (principal, action, resource) when { "abc };`))
	f.Add([]byte("permit (principal, action, resource) when { context.x like \"*;\" }; // ; \n forbid (principal,"))
	f.Fuzz(func(t *testing.T, text []byte) {
		e, err := New(Config{Policies: []PolicyFile{{Name: "f.cedar", Text: text}}})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "authz: invalid policies:\nf.cedar:") {
				t.Errorf("error does not start with the file name: %v", err)
			}
			return
		}
		// A policy set that loads must also decide without panicking.
		if _, err := e.Decide(&identity.RequestContext{}); err != nil {
			t.Errorf("Decide: %v", err)
		}
	})
}
