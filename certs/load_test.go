package certs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckAndSetDefaults(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg := Config{CertFile: "c.pem", KeyFile: "k.pem"}
		if err := cfg.CheckAndSetDefaults(); err != nil {
			t.Fatal(err)
		}
		if cfg.ClientAuth != ClientAuthNone || cfg.ReloadInterval != DefaultReloadInterval || cfg.Logger == nil || cfg.Now == nil {
			t.Errorf("defaults not set: %+v", cfg)
		}
	})
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"everything missing", Config{ClientAuth: ClientAuthRequire, ReloadInterval: -time.Second}, []string{
			"tls.cert_file: required", "tls.key_file: required",
			`tls.client_ca_file: required when tls.client_auth is "require"`, "tls.reload_interval: -1s must not be negative",
		}},
		{"unknown mode", Config{CertFile: "c", KeyFile: "k", ClientAuth: "optional"}, []string{
			`tls.client_auth: "optional" is not one of none, request, require`,
		}},
		{"request without CA", Config{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequest}, []string{
			"tls.client_ca_file: required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckAndSetDefaults()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewReportsBadFiles(t *testing.T) {
	dev := devSet(t, DevOptions{})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	missing := filepath.Join(dir, "missing.pem")
	garbage := write("garbage.pem", "hello")
	badDER := write("bad-der.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	badKey := write("bad-key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	encrypted := write("enc-key.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
	reversed := write("reversed.pem", read(dev.CA)+read(dev.ServerCert))
	chainWithCA := write("chain.pem", read(dev.ServerCert)+read(dev.CA))

	tests := []struct {
		name    string
		cfg     Config
		want    []string
		notFile bool
	}{
		{"missing cert", Config{CertFile: missing, KeyFile: dev.ServerKey},
			[]string{"tls.cert_file " + missing + ": no such file or directory"}, true},
		{"missing key and CA", Config{CertFile: dev.ServerCert, KeyFile: missing, ClientCAFile: missing, ClientAuth: ClientAuthRequire},
			[]string{"tls.key_file " + missing + ": no such file", "tls.client_ca_file " + missing + ": no such file"}, true},
		{"cert without PEM", Config{CertFile: garbage, KeyFile: dev.ServerKey},
			[]string{"tls.cert_file " + garbage + ": no PEM certificate found"}, false},
		{"cert with bad DER", Config{CertFile: badDER, KeyFile: dev.ServerKey},
			[]string{"tls.cert_file " + badDER + ": certificate 1: x509: malformed certificate"}, false},
		{"key file holds a certificate", Config{CertFile: dev.ServerCert, KeyFile: dev.ServerCert},
			[]string{"tls.key_file " + dev.ServerCert + ": no PEM private key found"}, false},
		{"key with bad DER", Config{CertFile: dev.ServerCert, KeyFile: badKey},
			[]string{"tls.key_file " + badKey + ": PRIVATE KEY: "}, false},
		{"encrypted key", Config{CertFile: dev.ServerCert, KeyFile: encrypted},
			[]string{"tls.key_file " + encrypted + ": encrypted private keys are not supported"}, false},
		{"key of another certificate", Config{CertFile: dev.ServerCert, KeyFile: dev.ClientKey},
			[]string{"tls.cert_file " + dev.ServerCert + " and tls.key_file " + dev.ClientKey + ": key does not match certificate"}, false},
		{"leaf not first", Config{CertFile: reversed, KeyFile: dev.ServerKey},
			[]string{"tls.cert_file " + reversed + ": certificate 2 matches tls.key_file " + dev.ServerKey + " but the leaf must come first"}, false},
		{"CA bundle without PEM", Config{CertFile: dev.ServerCert, KeyFile: dev.ServerKey, ClientCAFile: garbage, ClientAuth: ClientAuthRequest},
			[]string{"tls.client_ca_file " + garbage + ": no PEM certificate found"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notFile {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notFile)
			}
		})
	}

	t.Run("chain with intermediate is served whole", func(t *testing.T) {
		m, err := New(Config{CertFile: chainWithCA, KeyFile: dev.ServerKey, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(m.current.Load().cert.Certificate); n != 2 {
			t.Errorf("chain length = %d, want 2", n)
		}
	})
	t.Run("combined cert and key file", func(t *testing.T) {
		combined := write("combined.pem", read(dev.ServerCert)+read(dev.ServerKey))
		if _, err := New(Config{CertFile: combined, KeyFile: combined, Logger: quietLogger}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadCertPool(t *testing.T) {
	dev := devSet(t, DevOptions{})
	pool, err := LoadCertPool(dev.CA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(t, dev.ServerCert).Verify(x509VerifyOptions(pool)); err != nil {
		t.Errorf("server certificate does not verify against the loaded pool: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.pem")
	if _, err := LoadCertPool(missing); err == nil || !strings.HasPrefix(err.Error(), missing+": ") {
		t.Errorf("LoadCertPool(missing) = %v, want error naming the file", err)
	}
	if _, err := LoadCertPool(dev.ServerKey); err == nil || !strings.Contains(err.Error(), dev.ServerKey+": no PEM certificate found") {
		t.Errorf("LoadCertPool(key file) = %v", err)
	}
}
