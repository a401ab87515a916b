package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// problemLines returns the problems of err in Problem.String form, with
// lines.
func problemLines(t *testing.T, err error) []string {
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
		out[i] = p.String()
	}
	return out
}

func TestUnknownKeys(t *testing.T) {
	src := head + `lisen: ":1"
tls:
  certfile: x
idps:
  - name: corp
    issuer: https://idp.example.com
    audiences: [a]
    step_up:
      acr_values: mfa
      maxage: 5m
routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: public}
  - name: api
    host: api.example.com
    upsteam: http://127.0.0.1:8080
    auth: public
    upstream: http://127.0.0.1:8081
session: {cookie: x, secretz: [a]}
`
	_, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	want := []string{
		"lisen (line 5): unknown key",
		"tls.certfile (line 7): unknown key",
		"idps[0].step_up.maxage (line 14): unknown key",
		"routes[1].upsteam (line 19): unknown key",
		"session.cookie (line 22): unknown key",
		"session.secretz (line 22): unknown key",
	}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"wrong kinds", head + publicRoute + `trusted_proxies: 10.0.0.0/8
timezone: [UTC]
session: [a]
idps: {name: corp}
`, []string{
			`trusted_proxies (line 7): must be a list, not "10.0.0.0/8"`,
			"timezone (line 8): must be a string, not a list",
			"session (line 9): must be a mapping, not a list",
			"idps (line 10): must be a list, not a mapping",
		}},
		{"scalars", head + publicRoute + `preserve: 1
server:
  max_header_bytes: lots
  max_body_bytes: 1.5
  read_timeout: 30
  write_timeout: soon
  idle_timeout: {a: 1}
log: {level: 3}
`, []string{
			"preserve (line 7): unknown key",
			`server.max_header_bytes (line 9): must be an integer, not "lots"`,
			`server.max_body_bytes (line 10): must be an integer, not "1.5"`,
			`server.read_timeout (line 11): invalid duration "30": use a number with a unit, such as "30s" or "1h30m"`,
			`server.write_timeout (line 12): invalid duration "soon": use a number with a unit, such as "30s" or "1h30m"`,
			`server.idle_timeout (line 13): must be a duration such as "30s", not a mapping`,
			// A number is a fine string: YAML cannot tell "3" from 3 for us.
			`log.level (line 14): must be debug, info, warn or error, not "3"`,
		}},
		{"booleans", head + `routes:
  - {name: app, host: a.example.com, upstream: "http://127.0.0.1", auth: public, websocket: yes, strip_prefix: "true", preserve_host: 1}
`, []string{
			`routes[0].websocket (line 6): must be true or false, not "yes"`,
			`routes[0].strip_prefix (line 6): must be true or false, not "true"`,
			`routes[0].preserve_host (line 6): must be true or false, not "1"`,
		}},
		{"integer overflow", head + publicRoute + "server: {max_header_bytes: 99999999999999999999}\n", []string{
			`server.max_header_bytes (line 7): must be an integer, not "99999999999999999999"`,
		}},
		{"duplicate keys", head + publicRoute + "log: {level: info, level: debug}\nidps:\n  - {name: a, issuer: \"https://x\", extra_auth_params: {p: 1, p: 2}}\n", []string{
			"log.level (line 7): duplicate key",
			"idps[0].extra_auth_params.p (line 9): duplicate key",
		}},
		{"non-string keys", head + publicRoute + "? [a]\n: b\n", []string{
			"(root) (line 7): keys must be strings, not a list",
		}},
		{"document is not a mapping", "- a\n- b\n", []string{
			`(root) (line 1): must be a mapping, not a list`,
		}},
		{"syntax error", head + "routes: [\n", []string{
			"(yaml) (line 5): did not find expected node content",
		}},
		{"tab indentation", head + "tls:\n\tcert_file: x\n", []string{
			"(yaml) (line 6): found character that cannot start any token",
		}},
		{"two documents", head + publicRoute + "---\nmode: sidecar\n", []string{
			"(yaml) (line 7): only one YAML document is allowed",
		}},
		{"bad merge", head + publicRoute + "log:\n  <<: 3\n", []string{
			"log (line 8): a merge key (<<) needs a mapping or a list of mappings",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "testdata", Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"0", 0},
		{"0s", 0},
		{`"2m"`, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := head + publicRoute + "server: {write_timeout: " + tt.value + "}\n"
			f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			if f.Server.WriteTimeout != tt.want {
				t.Errorf("write_timeout = %s, want %s", f.Server.WriteTimeout, tt.want)
			}
		})
	}
}

// TestMergeKeys checks YAML anchors and merge keys, which keep long route
// lists short; the file's own keys win over merged ones.
func TestMergeKeys(t *testing.T) {
	src := head + `x-defaults: &defaults {auth: public, upstream: "http://127.0.0.1:8080", timeout: 5s}
routes:
  - {<<: *defaults, name: a, host: a.example.com}
  - {name: b, host: b.example.com, timeout: 7s, <<: *defaults}
`
	_, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	// The anchor has to live somewhere, and every key is checked.
	if diff := cmp.Diff([]string{"x-defaults (line 5): unknown key"}, problemLines(t, err)); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}
	src = head + `routes:
  - &a {name: a, host: a.example.com, auth: public, upstream: "http://127.0.0.1:8080", timeout: 5s}
  - {<<: *a, name: b, host: b.example.com, timeout: 7s}
`
	f, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Routes[1]; got.Name != "b" || got.Timeout != 7*time.Second || got.Auth != AuthPublic {
		t.Errorf("merged route = %+v", got)
	}
}

// TestAliasBomb guards against the "billion laughs" expansion: nested
// aliases must not make decoding take exponential time or memory.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + publicRoute + "log:\n")
	b.WriteString("  <<: &l0 {level: info}\n")
	for i := 1; i < 30; i++ {
		prev := "*l" + strconv.Itoa(i-1)
		b.WriteString("  x" + strconv.Itoa(i) + ": &l" + strconv.Itoa(i) + " {<<: [" + strings.Repeat(prev+", ", 9) + prev + "]}\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse([]byte(b.String()), "testdata", Options{LookupEnv: noEnv})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("alias bomb parsed without error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alias bomb still decoding after 10s")
	}
}

// TestAliasCycle checks that an anchor that contains itself does not
// loop forever.
func TestAliasCycle(t *testing.T) {
	src := head + publicRoute + "log: &l {<<: *l}\n"
	_, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	if err == nil {
		t.Fatal("self-referencing merge parsed without error")
	}
}
