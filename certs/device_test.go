package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"
)

func x509VerifyOptions(roots *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

// selfSigned builds a certificate from template for parsing tests only.
func selfSigned(t *testing.T, template *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = big.NewInt(1)
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDeviceIDChoice(t *testing.T) {
	tests := []struct {
		name         string
		template     x509.Certificate
		wantID       string
		wantSPIFFEID string
	}{
		{"spiffe wins", x509.Certificate{
			Subject: pkix.Name{CommonName: "cn"}, DNSNames: []string{"host.example"},
			URIs: []*url.URL{mustURL(t, "https://not-spiffe.example/x"), mustURL(t, "spiffe://corp.example/device/7")},
		}, "spiffe://corp.example/device/7", "spiffe://corp.example/device/7"},
		{"dns before email", x509.Certificate{
			Subject: pkix.Name{CommonName: "cn"}, DNSNames: []string{"a.example", "b.example"}, EmailAddresses: []string{"x@example.com"},
		}, "a.example", ""},
		{"email before cn", x509.Certificate{
			Subject: pkix.Name{CommonName: "cn"}, EmailAddresses: []string{"x@example.com"},
		}, "x@example.com", ""},
		{"common name last", x509.Certificate{Subject: pkix.Name{CommonName: "cn"}}, "cn", ""},
		// Two SPIFFE ids are not a valid SVID; neither may be chosen.
		{"two spiffe ids", x509.Certificate{
			Subject: pkix.Name{CommonName: "cn"},
			URIs:    []*url.URL{mustURL(t, "spiffe://a.example/one"), mustURL(t, "spiffe://a.example/two")},
		}, "cn", ""},
		{"spiffe id with query", x509.Certificate{
			Subject: pkix.Name{CommonName: "cn"}, URIs: []*url.URL{mustURL(t, "spiffe://a.example/x?admin=1")},
		}, "cn", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := selfSigned(t, &tt.template)
			dev := DeviceFromState(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}})
			if !dev.Present || dev.ID != tt.wantID || dev.SPIFFEID != tt.wantSPIFFEID {
				t.Errorf("got Present=%v ID=%q SPIFFEID=%q, want ID=%q SPIFFEID=%q",
					dev.Present, dev.ID, dev.SPIFFEID, tt.wantID, tt.wantSPIFFEID)
			}
			if len(dev.Fingerprint) != 64 {
				t.Errorf("fingerprint %q is not hex SHA-256", dev.Fingerprint)
			}
		})
	}
}

func TestDeviceFromStateIgnoresUnverifiedPeerCertificates(t *testing.T) {
	leaf := selfSigned(t, &x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://evil.example/admin")}})
	for name, cs := range map[string]*tls.ConnectionState{
		"nil state":              nil,
		"only peer certificates": {PeerCertificates: []*x509.Certificate{leaf}},
		"empty verified chain":   {PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{}}},
	} {
		if dev := DeviceFromState(cs); dev.Present || dev.ID != "" {
			t.Errorf("%s: got %+v, want zero Device", name, dev)
		}
	}

	// Over a real connection: with tls.RequestClientCert the server accepts
	// any certificate without verifying it, so it shows up only in
	// PeerCertificates and must not become a device.
	dev := devSet(t, DevOptions{})
	foreign := devSet(t, DevOptions{DeviceSPIFFEID: "spiffe://evil.example/admin"})
	cfg := newManager(t, dev, ClientAuthNone).TLSConfig()
	cfg.ClientAuth = tls.RequestClientCert
	addr, results := startTLSServer(t, cfg)
	res, clientErr, _ := dial(t, addr, results, clientConfig(t, foreign.ClientCert, foreign.ClientKey, dev.CA))
	if res.err != nil || clientErr != nil {
		t.Fatalf("handshake: %v / %v", res.err, clientErr)
	}
	if len(res.state.PeerCertificates) == 0 {
		t.Fatal("test setup: the unverified certificate did not reach the server")
	}
	if got := DeviceFromState(&res.state); got.Present {
		t.Errorf("unverified certificate became a device: %+v", got)
	}
}
