package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"ztproxy/internal/testenv"
)

// Issue 19 (Kubernetes): the config the Helm chart renders passes the real
// binary's check-config, with the default values and with the production
// values of the chart's ci/ directory. The files the pod would mount (TLS
// Secret, client CA, signing key, session keys, the ConfigMap's policies)
// are laid out under a temporary root at the same relative paths.
func TestHelmChartConfigPasses(t *testing.T) {
	helm := testenv.Helm(t)
	chart := filepath.Join(testenv.RepoRoot(t), "deploy", "helm", "ztproxy")
	for name, args := range map[string][]string{
		"defaults":   nil,
		"production": {"-f", filepath.Join(chart, "ci", "production-values.yaml")},
		"acme":       {"-f", filepath.Join(chart, "ci", "acme-values.yaml")},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(append([]string{"template", "ztp", chart}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			configPath := layOutChartFiles(t, root, renderedConfigMap(t, out))
			code, output := runWithEnv(t, []string{"ZTP_ISSUER=https://idp.example.com", "ZTP_CLIENT_SECRET=chart-test-secret"},
				"check-config", "--config", configPath)
			if code != 0 || !strings.Contains(output, ": OK (") {
				t.Fatalf("check-config of the rendered config: exit %d\n%s", code, output)
			}
		})
	}
}

// renderedConfigMap returns the data of the one ConfigMap in a rendering.
func renderedConfigMap(t *testing.T, manifests string) map[string]string {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc.Kind == "ConfigMap" {
			return doc.Data
		}
	}
	t.Fatal("no ConfigMap in the rendering")
	return nil
}

// layOutChartFiles writes the ConfigMap and stand-ins for the Secrets under
// root, at the paths the pod would see them with root as "/", and returns
// the config file's path.
func layOutChartFiles(t *testing.T, root string, data map[string]string) string {
	t.Helper()
	relocate := strings.NewReplacer("/etc/ztproxy/", root+"/etc/ztproxy/", "/var/lib/ztproxy", root+"/var/lib/ztproxy")
	configDir := filepath.Join(root, "etc", "ztproxy", "config")
	for name, content := range data {
		if name == "config.yaml" {
			content = relocate.Replace(content)
		}
		writeFile(t, filepath.Join(configDir, name), content)
	}
	certDir := filepath.Join(root, "dev-certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatalf("certs dev: %s", out)
	}
	copyFile(t, filepath.Join(certDir, "server.pem"), filepath.Join(root, "etc", "ztproxy", "tls", "tls.crt"))
	copyFile(t, filepath.Join(certDir, "server-key.pem"), filepath.Join(root, "etc", "ztproxy", "tls", "tls.key"))
	copyFile(t, filepath.Join(certDir, "ca.pem"), filepath.Join(root, "etc", "ztproxy", "client-ca", "ca.crt"))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc", "ztproxy", "signing", "signing-key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
	writeFile(t, filepath.Join(root, "etc", "ztproxy", "session", "session-secrets"), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n")
	if err := os.MkdirAll(filepath.Join(root, "var", "lib", "ztproxy"), 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(configDir, "config.yaml")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}
