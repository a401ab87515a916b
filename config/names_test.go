package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalRouteHost(t *testing.T) {
	tests := []struct {
		raw     string
		tls     bool
		want    string
		wantErr string
	}{
		{raw: "app.example.com", tls: true, want: "app.example.com"},
		{raw: "App.Example.COM", tls: true, want: "app.example.com"},
		{raw: "app.example.com.", tls: true, want: "app.example.com"},
		{raw: "app.example.com:443", tls: true, want: "app.example.com"},
		{raw: "APP.example.com.:443", tls: true, want: "app.example.com"},
		{raw: "app.example.com:80", tls: true, want: "app.example.com:80"},
		{raw: "app.example.com:80", tls: false, want: "app.example.com"},
		{raw: "app.example.com:443", tls: false, want: "app.example.com:443"},
		{raw: "app.example.com:8443", tls: true, want: "app.example.com:8443"},
		{raw: "*.Example.com", tls: true, want: "*.example.com"},
		{raw: "*.example.com:443", tls: true, want: "*.example.com"},
		{raw: "10.0.0.1", tls: true, want: "10.0.0.1"},
		{raw: "[::1]:443", tls: true, want: "[::1]"},
		{raw: "[2001:DB8::1]:8443", tls: true, want: "[2001:db8::1]:8443"},
		{raw: "internal_svc.corp", tls: true, want: "internal_svc.corp"},
		{raw: "xn--bcher-kva.example", tls: true, want: "xn--bcher-kva.example"},
		{raw: "a.*.example.com", tls: true, wantErr: "malformed host name: only letters, digits, - and _ are allowed"},
		{raw: "*", tls: true, wantErr: "malformed host name: only letters, digits, - and _ are allowed"},
		{raw: "*.", tls: true, wantErr: "malformed host name: only letters, digits, - and _ are allowed"},
		{raw: "*..", tls: true, wantErr: "empty host name"},
		{raw: "app..example.com", tls: true, wantErr: "malformed host name: labels are 1 to 63 characters"},
		{raw: "-app.example.com", tls: true, wantErr: "malformed host name: a label starts or ends with -"},
		{raw: "app.example.com:", tls: true, wantErr: "port must be a number from 1 to 65535"},
		{raw: "app.example.com:0", tls: true, wantErr: "port must be a number from 1 to 65535"},
		{raw: "app.example.com:https", tls: true, wantErr: "port must be a number from 1 to 65535"},
		{raw: "::1", tls: true, wantErr: "IPv6 addresses must be in brackets, such as [::1]"},
		{raw: "[::1", tls: true, wantErr: "missing ] in IPv6 address"},
		{raw: "[10.0.0.1]", tls: true, wantErr: "malformed IPv6 address"},
		{raw: "[::1]x", tls: true, wantErr: "unexpected text after IPv6 address"},
		{raw: "app.example.com/x", tls: true, wantErr: "must be a host name, not a URL"},
		{raw: "user@app.example.com", tls: true, wantErr: "malformed host name: only letters, digits, - and _ are allowed"},
		{raw: "ÄPP.example.com", tls: true, wantErr: "non-ASCII host name: use its xn-- (punycode) form"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := canonicalRouteHost(tt.raw, tt.tls)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tt.want || gotErr != tt.wantErr {
				t.Errorf("canonicalRouteHost(%q, %v) = %q, %q; want %q, %q", tt.raw, tt.tls, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCanonicalPathPrefix(t *testing.T) {
	tests := []struct {
		raw     string
		want    string
		wantErr string
	}{
		{raw: "", want: "/"},
		{raw: "/", want: "/"},
		{raw: "/api", want: "/api"},
		{raw: "/api/", want: "/api"},
		{raw: "/api/v1/", want: "/api/v1"},
		{raw: "/a.b/..c/...", want: "/a.b/..c/..."},
		{raw: "/~user/", want: "/~user"},
		{raw: "api", wantErr: `must start with "/"`},
		{raw: "/api//v1", wantErr: `must not contain "//"`},
		{raw: "//", wantErr: `must not contain "//"`},
		{raw: "/api/../admin", wantErr: `must not contain "." or ".." segments`},
		{raw: "/..", wantErr: `must not contain "." or ".." segments`},
		{raw: "/./api", wantErr: `must not contain "." or ".." segments`},
		{raw: "/api%2F", wantErr: `must not contain "%": write the decoded path`},
		{raw: `/api\x`, wantErr: `must not contain \, ?, #, spaces or control characters`},
		{raw: "/api?x=1", wantErr: `must not contain \, ?, #, spaces or control characters`},
		{raw: "/a b", wantErr: `must not contain \, ?, #, spaces or control characters`},
		{raw: "/a\x00", wantErr: `must not contain \, ?, #, spaces or control characters`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := canonicalPathPrefix(tt.raw)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tt.want || gotErr != tt.wantErr {
				t.Errorf("canonicalPathPrefix(%q) = %q, %q; want %q, %q", tt.raw, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPolicyGlobs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.cedar", "a.cedar", "notes.txt", "sub/c.cedar", "sub/d.cedar"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("// policy\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.cedar"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		policies string
		want     []string
	}{
		{"one glob", "[\"*.cedar\"]", []string{"a.cedar", "b.cedar"}},
		{"glob and file, deduplicated and sorted", "[sub/d.cedar, \"*.cedar\", a.cedar, \"sub/*.cedar\"]",
			[]string{"a.cedar", "b.cedar", "sub/c.cedar", "sub/d.cedar"}},
		{"character class", "[\"[b]*.cedar\"]", []string{"b.cedar"}},
		{"absolute", "[\"" + filepath.Join(dir, "sub", "?.cedar") + "\"]", []string{"sub/c.cedar", "sub/d.cedar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + publicRoute + "policies: " + tt.policies + "\n"
			f, err := Parse([]byte(src), dir, Options{LookupEnv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, name := range tt.want {
				want = append(want, filepath.Join(dir, name))
			}
			if diff := cmp.Diff(want, f.PolicyFiles); diff != "" {
				t.Errorf("PolicyFiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSigningKey(t *testing.T) {
	dir := t.TempDir()
	writeKey := func(name, pemType string, der []byte) {
		t.Helper()
		data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p256)
	pkcs8384, _ := x509.MarshalPKCS8PrivateKey(p384)
	writeKey("sec1.pem", "EC PRIVATE KEY", sec1)
	writeKey("pkcs8.pem", "PRIVATE KEY", pkcs8)
	writeKey("p384.pem", "PRIVATE KEY", pkcs8384)
	writeKey("junk.pem", "EC PRIVATE KEY", []byte("junk"))
	if err := os.WriteFile(filepath.Join(dir, "text.pem"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		want []string
	}{
		{"sec1.pem", nil},
		{"pkcs8.pem", nil},
		{"p384.pem", []string{"assertion.signing_key_file: " + dir + "/p384.pem: not an EC P-256 private key (assertions are signed with ES256)"}},
		{"junk.pem", []string{"assertion.signing_key_file: " + dir + "/junk.pem: malformed private key"}},
		{"text.pem", []string{"assertion.signing_key_file: " + dir + "/text.pem: no PEM block found; want an EC P-256 private key"}},
		{"missing.pem", []string{"assertion.signing_key_file: " + dir + "/missing.pem: no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src := head + publicRoute + "assertion: {signing_key_file: " + tt.file + "}\n"
			f, err := Parse([]byte(src), dir, Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if err == nil && f.Assertion.SigningKeyFile != filepath.Join(dir, tt.file) {
				t.Errorf("signing_key_file = %q, want it absolute", f.Assertion.SigningKeyFile)
			}
		})
	}
}
