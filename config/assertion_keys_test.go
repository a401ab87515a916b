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

// TestRotationKeys: issue 19, assertion keys rotate by reload. The next and
// previous keys are P-256 keys (private, or public for a retired key whose
// private half is gone), need a configured signing key, must differ from
// it, and are loaded into Runtime.PublishedKeys and watched for changes.
func TestRotationKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, pemType string, der []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	next, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(cur)
	write("current.pem", "EC PRIVATE KEY", der)
	der, _ = x509.MarshalPKCS8PrivateKey(next)
	write("next.pem", "PRIVATE KEY", der)
	der, _ = x509.MarshalPKIXPublicKey(&prev.PublicKey)
	write("previous.pub.pem", "PUBLIC KEY", der)
	der, _ = x509.MarshalPKIXPublicKey(&p384.PublicKey)
	write("p384.pub.pem", "PUBLIC KEY", der)
	write("junk.pub.pem", "PUBLIC KEY", []byte("junk"))

	tests := []struct {
		name, assertion string
		want            []string
		published       int
	}{
		{"rotation", "{signing_key_file: current.pem, next_signing_key_file: next.pem, previous_signing_key_file: previous.pub.pem}", nil, 2},
		{"no signing key", "{next_signing_key_file: next.pem}",
			[]string{"assertion.next_signing_key_file: needs assertion.signing_key_file: a rotation replaces a configured key"}, 0},
		{"same key", "{signing_key_file: current.pem, previous_signing_key_file: current.pem}",
			[]string{"assertion.previous_signing_key_file: is the same key as assertion.signing_key_file"}, 0},
		{"P-384", "{signing_key_file: current.pem, next_signing_key_file: p384.pub.pem}",
			[]string{"assertion.next_signing_key_file: " + dir + "/p384.pub.pem: not an EC P-256 key (assertions are signed with ES256)"}, 0},
		{"junk", "{signing_key_file: current.pem, previous_signing_key_file: junk.pub.pem}",
			[]string{"assertion.previous_signing_key_file: " + dir + "/junk.pub.pem: malformed public key"}, 0},
		{"missing", "{signing_key_file: current.pem, next_signing_key_file: gone.pem}",
			[]string{"assertion.next_signing_key_file: " + dir + "/gone.pem: no such file"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + publicRoute + "assertion: " + tt.assertion + "\n"
			f, err := Parse([]byte(src), dir, Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			rt, err := Build(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(rt.PublishedKeys) != tt.published || !rt.PublishedKeys[0].Equal(&next.PublicKey) || !rt.PublishedKeys[1].Equal(&prev.PublicKey) {
				t.Errorf("published keys %v", rt.PublishedKeys)
			}
			want := []string{filepath.Join(dir, "current.pem"), filepath.Join(dir, "next.pem"), filepath.Join(dir, "previous.pub.pem")}
			if diff := cmp.Diff(want, f.SecretFiles()); diff != "" {
				t.Errorf("watched files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTracingConfig: issue 19, the tracing: block is checked like every
// other key, with its path.
func TestTracingConfig(t *testing.T) {
	tests := []struct {
		block string
		want  []string
	}{
		{"{enabled: true, exporter: otlp_http, endpoint: \"http://collector:4318\", sample_ratio: 0.01, service_name: edge}", nil},
		{"{enabled: false}", nil},
		{"{exporter: zipkin}", []string{`tracing.exporter: must be otlp_grpc or otlp_http, not "zipkin"`}},
		{"{endpoint: \"collector:4317\"}", []string{"tracing.endpoint: must be an http:// or https:// URL of the collector, without credentials (use OTEL_EXPORTER_OTLP_HEADERS)"}},
		{"{endpoint: \"https://user:pw@collector:4317\"}", []string{"tracing.endpoint: must be an http:// or https:// URL of the collector, without credentials (use OTEL_EXPORTER_OTLP_HEADERS)"}},
		{"{sample_ratio: 1.5}", []string{"tracing.sample_ratio: must be between 0 and 1, not 1.5"}},
		{"{sampler: always}", []string{"tracing.sampler: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.block, func(t *testing.T) {
			_, err := Parse([]byte(head+publicRoute+"tracing: "+tt.block+"\n"), t.TempDir(), Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTracingSampleRatioDecode: the first float key of the schema decodes
// plain numbers only.
func TestTracingSampleRatioDecode(t *testing.T) {
	for src, want := range map[string]string{
		"1": "", "0": "", "0.25": "", `"0.5"`: `tracing.sample_ratio: must be a number, not "0.5"`,
		".nan": `tracing.sample_ratio: must be a number, not ".nan"`, "[1]": "tracing.sample_ratio: must be a number, not a list",
	} {
		_, err := Parse([]byte(head+publicRoute+"tracing: {sample_ratio: "+src+"}\n"), t.TempDir(), Options{LookupEnv: noEnv})
		got := problemsOf(t, err)
		if (want == "") != (len(got) == 0) || want != "" && got[0] != want {
			t.Errorf("%s: %v, want %q", src, got, want)
		}
	}
}
