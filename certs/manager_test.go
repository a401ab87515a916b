package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

func newManager(t *testing.T, dev DevFiles, mode ClientAuth) *Manager {
	t.Helper()
	cfg := Config{CertFile: dev.ServerCert, KeyFile: dev.ServerKey, ClientAuth: mode, ReloadInterval: 20 * time.Millisecond, Logger: quietLogger}
	if mode != ClientAuthNone {
		cfg.ClientCAFile = dev.CA
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDevCAHandshakeYieldsDevice(t *testing.T) {
	dev := devSet(t, DevOptions{})
	m := newManager(t, dev, ClientAuthRequire)
	addr, results := startTLSServer(t, m.TLSConfig())

	res, clientErr, _ := dial(t, addr, results, clientConfig(t, dev.ClientCert, dev.ClientKey, dev.CA))
	if res.err != nil || clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", res.err, clientErr)
	}
	if got := res.state.NegotiatedProtocol; got != "h2" {
		t.Errorf("ALPN = %q, want h2", got)
	}
	leaf := readCert(t, dev.ClientCert)
	fp := sha256.Sum256(leaf.Raw)
	want := identity.Device{
		Present:     true,
		ID:          DefaultDeviceSPIFFEID,
		SPIFFEID:    DefaultDeviceSPIFFEID,
		CommonName:  "dev-laptop",
		Fingerprint: hex.EncodeToString(fp[:]),
		NotAfter:    leaf.NotAfter,
	}
	if diff := cmp.Diff(want, DeviceFromState(&res.state)); diff != "" {
		t.Errorf("device (-want +got):\n%s", diff)
	}
}

func TestClientAuthModes(t *testing.T) {
	dev := devSet(t, DevOptions{})
	foreign := devSet(t, DevOptions{})
	tests := []struct {
		name        string
		mode        ClientAuth
		cert, key   string
		wantOK      bool
		wantPresent bool
	}{
		{"require without cert", ClientAuthRequire, "", "", false, false},
		{"require with cert", ClientAuthRequire, dev.ClientCert, dev.ClientKey, true, true},
		{"require with foreign cert", ClientAuthRequire, foreign.ClientCert, foreign.ClientKey, false, false},
		{"request without cert", ClientAuthRequest, "", "", true, false},
		{"request with cert", ClientAuthRequest, dev.ClientCert, dev.ClientKey, true, true},
		// "request" still verifies a certificate that is presented.
		{"request with foreign cert", ClientAuthRequest, foreign.ClientCert, foreign.ClientKey, false, false},
		{"none with cert", ClientAuthNone, dev.ClientCert, dev.ClientKey, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, dev, tt.mode)
			addr, results := startTLSServer(t, m.TLSConfig())
			res, clientErr, _ := dial(t, addr, results, clientConfig(t, tt.cert, tt.key, dev.CA))
			if ok := res.err == nil && clientErr == nil; ok != tt.wantOK {
				t.Fatalf("handshake ok = %v, want %v (server %v, client %v)", ok, tt.wantOK, res.err, clientErr)
			}
			if got := DeviceFromState(&res.state).Present; got != tt.wantPresent {
				t.Errorf("Device.Present = %v, want %v", got, tt.wantPresent)
			}
		})
	}
}

func TestTLSConfigSettings(t *testing.T) {
	dev := devSet(t, DevOptions{})
	want := map[ClientAuth]tls.ClientAuthType{
		ClientAuthNone:    tls.NoClientCert,
		ClientAuthRequest: tls.VerifyClientCertIfGiven,
		ClientAuthRequire: tls.RequireAndVerifyClientCert,
	}
	for mode, wantType := range want {
		cfg := newManager(t, dev, mode).TLSConfig()
		perConn, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if perConn.ClientAuth != wantType || cfg.ClientAuth != wantType {
			t.Errorf("%s: ClientAuth = %v, want %v", mode, perConn.ClientAuth, wantType)
		}
		if cfg.MinVersion != tls.VersionTLS12 || perConn.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s: MinVersion = %x", mode, cfg.MinVersion)
		}
		if diff := cmp.Diff([]string{"h2", "http/1.1"}, perConn.NextProtos); diff != "" {
			t.Errorf("%s: NextProtos (-want +got):\n%s", mode, diff)
		}
	}
}

func TestRunReloadsServerCertificate(t *testing.T) {
	dev := devSet(t, DevOptions{})
	next := devSet(t, DevOptions{})
	m := newManager(t, dev, ClientAuthNone)
	var hooks hookRecorder
	m.SetReloadHook(hooks.record)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	addr, results := startTLSServer(t, m.TLSConfig())
	client := clientConfig(t, "", "", dev.CA, next.CA)
	oldLeaf, newLeaf := readCert(t, dev.ServerCert), readCert(t, next.ServerCert)
	if _, _, got := dial(t, addr, results, client); !got.Equal(oldLeaf) {
		t.Fatal("server does not serve the initial certificate")
	}

	copyFile(t, next.ServerKey, dev.ServerKey)
	copyFile(t, next.ServerCert, dev.ServerCert)
	eventually(t, "new certificate", func() bool {
		_, _, got := dial(t, addr, results, client)
		return got.Equal(newLeaf)
	})
	eventually(t, "successful reload hook", func() bool {
		calls := hooks.snapshot()
		return len(calls) > 0 && calls[len(calls)-1] == nil
	})
	if got := m.Expiries()["server"]; !got.Equal(newLeaf.NotAfter) {
		t.Errorf("Expiries()[server] = %v, want %v", got, newLeaf.NotAfter)
	}
}

func TestBrokenReloadKeepsServing(t *testing.T) {
	dev := devSet(t, DevOptions{})
	other := devSet(t, DevOptions{})
	var logs syncBuffer
	m, err := New(Config{CertFile: dev.ServerCert, KeyFile: dev.ServerKey, ReloadInterval: 10 * time.Millisecond, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	var hooks hookRecorder
	m.SetReloadHook(hooks.record)
	addr, results := startTLSServer(t, m.TLSConfig())
	client := clientConfig(t, "", "", dev.CA)
	oldLeaf := readCert(t, dev.ServerCert)

	// A key that belongs to another certificate.
	copyFile(t, other.ServerKey, dev.ServerKey)
	err = m.Reload()
	if err == nil || !strings.Contains(err.Error(), "key does not match certificate") {
		t.Fatalf("Reload() = %v, want key mismatch", err)
	}
	if _, clientErr, got := dial(t, addr, results, client); clientErr != nil || !got.Equal(oldLeaf) {
		t.Fatalf("after failed reload: client error %v, old certificate served = %v", clientErr, got.Equal(oldLeaf))
	}

	// Garbage in the certificate file, picked up by Run: reported once
	// however many polls see it.
	if err := os.WriteFile(dev.ServerCert, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	eventually(t, "failure hook", func() bool { return len(hooks.snapshot()) == 2 })
	time.Sleep(100 * time.Millisecond) // several more polls
	cancel()
	<-done
	calls := hooks.snapshot()
	if len(calls) != 2 {
		t.Fatalf("hook calls = %v, want exactly 2 failures", calls)
	}
	if want := "tls.cert_file " + dev.ServerCert + ": no PEM certificate found"; calls[1] == nil || !strings.Contains(calls[1].Error(), want) {
		t.Errorf("hook error = %v, want %q", calls[1], want)
	}
	if _, clientErr, got := dial(t, addr, results, client); clientErr != nil || !got.Equal(oldLeaf) {
		t.Fatalf("after broken files: client error %v", clientErr)
	}

	keyPEM, _ := os.ReadFile(other.ServerKey)
	body := strings.Split(string(keyPEM), "\n")[1]
	if strings.Contains(logs.String(), body) || strings.Contains(logs.String(), "PRIVATE KEY-----") {
		t.Error("logs contain key material")
	}
	if !strings.Contains(logs.String(), "tls reload failed") {
		t.Errorf("logs do not report the failure:\n%s", logs.String())
	}
}

func TestReloadRotatesClientCA(t *testing.T) {
	dev := devSet(t, DevOptions{})
	next := devSet(t, DevOptions{})
	m := newManager(t, dev, ClientAuthRequire)
	addr, results := startTLSServer(t, m.TLSConfig())
	oldClient := clientConfig(t, dev.ClientCert, dev.ClientKey, dev.CA)
	newClient := clientConfig(t, next.ClientCert, next.ClientKey, dev.CA)

	if res, clientErr, _ := dial(t, addr, results, oldClient); res.err != nil || clientErr != nil {
		t.Fatalf("old client before rotation: %v / %v", res.err, clientErr)
	}
	copyFile(t, next.CA, dev.CA)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if res, clientErr, _ := dial(t, addr, results, oldClient); res.err == nil && clientErr == nil {
		t.Error("client of the retired CA still accepted")
	}
	res, clientErr, _ := dial(t, addr, results, newClient)
	if res.err != nil || clientErr != nil {
		t.Fatalf("client of the new CA: %v / %v", res.err, clientErr)
	}
	if got := DeviceFromState(&res.state).Fingerprint; got == "" {
		t.Error("no device from the new CA's client")
	}
}

func TestExpiries(t *testing.T) {
	short := devSet(t, DevOptions{Validity: 48 * time.Hour})
	long := devSet(t, DevOptions{Validity: 96 * time.Hour})
	bundle := t.TempDir() + "/bundle.pem"
	a, _ := os.ReadFile(long.CA)
	b, _ := os.ReadFile(short.CA)
	if err := os.WriteFile(bundle, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{CertFile: long.ServerCert, KeyFile: long.ServerKey, ClientCAFile: bundle, ClientAuth: ClientAuthRequest, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"server":    readCert(t, long.ServerCert).NotAfter,
		"client_ca": readCert(t, short.CA).NotAfter,
	}
	if diff := cmp.Diff(want, m.Expiries()); diff != "" {
		t.Errorf("Expiries (-want +got):\n%s", diff)
	}

	noCA := newManager(t, long, ClientAuthNone)
	if _, ok := noCA.Expiries()["client_ca"]; ok {
		t.Error("client_ca expiry reported without a client CA file")
	}
}

// TestResumptionAfterClientCARotation guards CVE-2025-68121 (golang/go#77113):
// a session ticket issued while the old client CA was trusted must not let
// its client back in after the CA is rotated out via GetConfigForClient.
func TestResumptionAfterClientCARotation(t *testing.T) {
	dev := devSet(t, DevOptions{})
	next := devSet(t, DevOptions{})
	m := newManager(t, dev, ClientAuthRequire)
	addr, results := startTLSServer(t, m.TLSConfig())
	client := clientConfig(t, dev.ClientCert, dev.ClientKey, dev.CA)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	for i, wantResume := range []bool{false, true} {
		res, clientErr, _ := dial(t, addr, results, client)
		if res.err != nil || clientErr != nil {
			t.Fatalf("handshake %d: %v / %v", i, res.err, clientErr)
		}
		if res.state.DidResume != wantResume {
			t.Fatalf("handshake %d: DidResume = %v, want %v (the test needs resumption to work)", i, res.state.DidResume, wantResume)
		}
	}
	copyFile(t, next.CA, dev.CA)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	res, clientErr, _ := dial(t, addr, results, client)
	if res.err == nil && clientErr == nil {
		t.Fatalf("client of the retired CA got in after rotation (resumed: %v)", res.state.DidResume)
	}
}

// TestHTTPServerSeesDevice checks the config works as http.Server uses it:
// ServeTLS clones it, and HTTP/2 is negotiated through GetConfigForClient.
func TestHTTPServerSeesDevice(t *testing.T) {
	dev := devSet(t, DevOptions{})
	m := newManager(t, dev, ClientAuthRequest)
	srv := &http.Server{
		TLSConfig: m.TLSConfig(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.Proto, DeviceFromState(r.TLS).ID)
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   clientConfig(t, dev.ClientCert, dev.ClientKey, dev.CA),
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get("https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := "HTTP/2.0 " + DefaultDeviceSPIFFEID; string(body) != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}
