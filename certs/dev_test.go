package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWriteDevFiles(t *testing.T) {
	files := devSet(t, DevOptions{Hosts: []string{"proxy.test", "10.1.2.3"}})
	for _, p := range []string{files.CAKey, files.ServerKey, files.ClientKey} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, perm)
		}
		key, err := parsePrivateKey(p, mustRead(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if ec, ok := key.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P256() {
			t.Errorf("%s: key %T is not ECDSA P-256", p, key)
		}
	}
	ca := readCert(t, files.CA)
	if !ca.IsCA {
		t.Error("CA certificate is not a CA")
	}
	server := readCert(t, files.ServerCert)
	if !slices.Equal(server.DNSNames, []string{"proxy.test"}) || len(server.IPAddresses) != 1 || !server.IPAddresses[0].Equal(net.ParseIP("10.1.2.3")) {
		t.Errorf("server SANs = %v %v", server.DNSNames, server.IPAddresses)
	}
	if !slices.Equal(server.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server ExtKeyUsage = %v", server.ExtKeyUsage)
	}
	client := readCert(t, files.ClientCert)
	if client.Subject.CommonName != "dev-laptop" || len(client.URIs) != 1 || client.URIs[0].String() != DefaultDeviceSPIFFEID {
		t.Errorf("client CN %q URIs %v", client.Subject.CommonName, client.URIs)
	}
	if !slices.Equal(client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("client ExtKeyUsage = %v", client.ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client does not verify for client auth: %v", err)
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: "proxy.test"}); err != nil {
		t.Errorf("server does not verify for proxy.test: %v", err)
	}
}

func TestWriteDevRefusesToReplaceCA(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dev")
	first := devSet(t, DevOptions{Out: out})
	before := mustRead(t, first.CA)
	_, err := WriteDev(DevOptions{Out: out})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second WriteDev = %v, want refusal", err)
	}
	if !bytes.Equal(before, mustRead(t, first.CA)) {
		t.Fatal("refused WriteDev changed the CA")
	}
	if _, err := WriteDev(DevOptions{Out: out, Force: true}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, mustRead(t, first.CA)) {
		t.Error("Force did not replace the CA")
	}
}

func TestWriteDevValidatesOptions(t *testing.T) {
	_, err := WriteDev(DevOptions{DeviceSPIFFEID: "https://x.example/y", Validity: -1})
	for _, want := range []string{"output directory is required", "device SPIFFE id", "validity"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestIssueClientForSecondDevice(t *testing.T) {
	dev := devSet(t, DevOptions{})
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	const id = "spiffe://ztproxy.dev/device/other"
	if err := IssueClient(dev.CA, dev.CAKey, cert, key, id, "other", 0); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, dev, ClientAuthRequire)
	addr, results := startTLSServer(t, m.TLSConfig())
	res, clientErr, _ := dial(t, addr, results, clientConfig(t, cert, key, dev.CA))
	if res.err != nil || clientErr != nil {
		t.Fatalf("handshake: %v / %v", res.err, clientErr)
	}
	if got := DeviceFromState(&res.state); got.ID != id || got.CommonName != "other" {
		t.Errorf("device = %+v", got)
	}
	if !readCert(t, cert).NotAfter.Equal(readCert(t, dev.CA).NotAfter) {
		t.Error("default validity was not capped at the CA's expiry")
	}

	if err := IssueClient(dev.ServerCert, dev.ServerKey, cert, key, id, "x", 0); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("IssueClient with a leaf as CA = %v", err)
	}
	if err := IssueClient(dev.CA, dev.ClientKey, cert, key, id, "x", 0); err == nil || !strings.Contains(err.Error(), "key does not match") {
		t.Errorf("IssueClient with the wrong CA key = %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Issue 15.11: people are told to trust the dev CA in their browsers, and
// its key lies in a plain file; a copy of that key must not mint a
// certificate any other site would be trusted with.
func TestDevCAIsNameConstrained(t *testing.T) {
	files := devSet(t, DevOptions{Hosts: []string{"proxy.test", "10.1.2.3", "::1"}})
	ca := readCert(t, files.CA)
	if !ca.PermittedDNSDomainsCritical || !slices.Equal(ca.PermittedDNSDomains, []string{"proxy.test"}) || len(ca.PermittedIPRanges) != 2 {
		t.Fatalf("CA constraints: critical %v, DNS %v, IP %v", ca.PermittedDNSDomainsCritical, ca.PermittedDNSDomains, ca.PermittedIPRanges)
	}
	caKey, err := parsePrivateKey(files.CAKey, mustRead(t, files.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"proxy.test", true}, {"app.proxy.test", true}, {"10.1.2.3", true}, {"::1", true},
		{"bank.example", false}, {"proxy.test.evil.example", false}, {"10.1.2.4", false},
	} {
		der, _, err := issueLeaf(ca, caKey, serverTemplate([]string{tc.host}), ca.NotBefore.Add(time.Hour), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.host, CurrentTime: ca.NotBefore.Add(2 * time.Hour)})
		if (err == nil) != tc.ok {
			t.Errorf("a certificate for %s minted with the CA key: verify error %v, want ok=%v", tc.host, err, tc.ok)
		}
	}
}

// Issue 15.6: a second WriteDev names the condition, not a Go field.
func TestWriteDevExistingCAError(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dev")
	devSet(t, DevOptions{Out: out})
	_, err := WriteDev(DevOptions{Out: out})
	if !errors.Is(err, ErrDevCAExists) || strings.Contains(err.Error(), "Force") {
		t.Fatalf("second WriteDev = %v", err)
	}
}
