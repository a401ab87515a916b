package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"ztproxy/internal/testenv"
)

// writeECKey writes a fresh P-256 private key (SEC 1 PEM) to path.
func writeECKey(t *testing.T, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
}

// publishedKIDs fetches a proxy's /.ztp/jwks.json and returns its kids.
func publishedKIDs(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/.ztp/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// assertionKID is the kid in a compact JWS header.
func assertionKID(token string) string {
	hdr, _, _ := strings.Cut(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(hdr)
	var h struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.KID
}

// TestE2EKeyRotationUnderLoad: issue 19, the assertion signing key could
// only be rotated by restarting, and upstreams caching the JWKS then
// refused the new key's assertions. Now, under steady load through a real
// front proxy, a real sidecar (trusted_jwks = the front's JWKS URL) and
// an upstream verifying as docs/identity-headers.md shows (go-oidc
// RemoteKeySet), the documented procedure — publish next, wait one JWKS
// refresh, promote (old key becomes previous), wait, retire — is done by
// rewriting the key files and SIGHUP, and no request fails.
func TestE2EKeyRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	idpKey := testenv.NewECSigningKey(t, "idp")
	idp := testenv.StartHostileIdP(t, idpKey)
	writeECKey(t, filepath.Join(dir, "key-a.pem"))
	writeECKey(t, filepath.Join(dir, "key-b.pem"))
	frontPub, frontAdm := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	scPub, scAdm := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	front := "http://" + frontPub

	// The upstream verifier of the docs: go-oidc with the front's JWKS.
	var kidsMu sync.Mutex
	kidsSeen := map[string]int{}
	verifier := oidc.NewVerifier(front, oidc.NewRemoteKeySet(context.Background(), front+"/.ztp/jwks.json"),
		&oidc.Config{ClientID: "reports", SupportedSigningAlgs: []string{"ES256"}})
	verifying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get("X-Ztp-Assertion")
		if _, err := verifier.Verify(r.Context(), raw); err != nil {
			http.Error(w, "verifier: "+err.Error(), http.StatusUnauthorized)
			return
		}
		kidsMu.Lock()
		kidsSeen[assertionKID(raw)]++
		kidsMu.Unlock()
		io.WriteString(w, "verified")
	}))
	t.Cleanup(verifying.Close)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "service sees "+r.Header.Get("X-Ztp-User"))
	}))
	t.Cleanup(svc.Close)

	writeFile(t, filepath.Join(dir, "allow.cedar"), "permit (principal, action, resource);\n")
	frontConfig := func(keys string) {
		writeFile(t, filepath.Join(dir, "front.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
insecure_plaintext: true
policies: [allow.cedar]
idps: [{name: corp, issuer: %q, audiences: [api]}]
store: {path: front.db}
audit: {output: front-audit.log}
assertion: {ttl: 10s, %s}
routes:
  - {name: orders, host: 127.0.0.1, path_prefix: /orders, upstream: "http://%s", auth: bearer}
  - {name: reports, host: 127.0.0.1, path_prefix: /reports, upstream: %q, auth: bearer}
`, frontPub, frontAdm, front, idp.Issuer, keys, scPub, verifying.URL))
	}
	frontConfig("signing_key_file: key-a.pem")
	// The sidecar refreshes the front's keys every 2 s, the least wait the
	// procedure asks for between publishing the next key and signing with it.
	writeFile(t, filepath.Join(dir, "sidecar.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
insecure_plaintext: true
policies: [allow.cedar]
assertion: {trusted_jwks: ["%s/.ztp/jwks.json"], jwks_refresh_interval: 2s, jwks_min_refetch_interval: 1s}
sidecar: {name: orders}
store: {path: sidecar.db}
audit: {output: sidecar-audit.log}
`, scPub, scAdm, front))
	fp := startServe(t, filepath.Join(dir, "front.yaml"), frontAdm, frontPub)
	startProc(t, scAdm, scPub, "sidecar", "--upstream", svc.URL, "--config", filepath.Join(dir, "sidecar.yaml"))

	kidA := publishedKIDs(t, front)
	if len(kidA) != 1 {
		t.Fatalf("initial JWKS: %v", kidA)
	}
	var users []string
	for i := range 4 {
		users = append(users, testenv.Token(idpKey, idp.Claims(fmt.Sprintf("user%d", i), "api", time.Hour)))
	}
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path, want := "/orders/1", "service sees "
				if i%2 == 1 {
					path, want = "/reports/1", "verified"
				}
				req, _ := http.NewRequest("GET", front+path, nil)
				req.Header.Set("Authorization", "Bearer "+users[(w+i)%len(users)])
				resp, err := client.Do(req)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 && strings.HasPrefix(string(body), want) {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
				}
				failed.Add(1)
				failMu.Lock()
				if len(failures) < 10 {
					failures = append(failures, err.Error())
				}
				failMu.Unlock()
			}
		}()
	}
	reload := func(keys string, want func([]string) bool) []string {
		t.Helper()
		frontConfig(keys)
		fp.cmd.Process.Signal(syscall.SIGHUP)
		var kids []string
		waitFor(t, 15*time.Second, "the front's JWKS after "+keys, func() bool {
			kids = publishedKIDs(t, front)
			return want(kids)
		})
		return kids
	}
	steady := func(d time.Duration) {
		before := ok.Load()
		time.Sleep(d)
		if ok.Load() == before {
			t.Fatalf("no request succeeded in %s (failures %d: %v)", d, failed.Load(), failures)
		}
	}
	steady(time.Second)
	// 1. Publish key B as the next key: A still signs.
	kids := reload("signing_key_file: key-a.pem, next_signing_key_file: key-b.pem", func(k []string) bool { return len(k) == 2 })
	if kids[0] != kidA[0] {
		t.Fatalf("staging the next key changed the signing key: %v", kids)
	}
	kidB := kids[1]
	steady(3 * time.Second) // > the sidecar's jwks_refresh_interval: every verifier has B
	// 2. Promote B; A stays published as the previous key.
	reload("signing_key_file: key-b.pem, previous_signing_key_file: key-a.pem", func(k []string) bool { return len(k) == 2 && k[0] == kidB })
	waitFor(t, 15*time.Second, "assertions signed with the new key", func() bool {
		kidsMu.Lock()
		defer kidsMu.Unlock()
		return kidsSeen[kidB] > 0
	})
	steady(2 * time.Second)
	// 3. Retire A (after assertion.ttl in production; nothing signed with A
	// is served any more, the cache is keyed by signing key).
	reload("signing_key_file: key-b.pem", func(k []string) bool { return len(k) == 1 && k[0] == kidB })
	steady(2 * time.Second)
	close(stop)
	wg.Wait()

	kidsMu.Lock()
	t.Logf("requests: %d ok, %d failed; assertions verified upstream by kid: %v", ok.Load(), failed.Load(), kidsSeen)
	if kidsSeen[kidA[0]] == 0 || kidsSeen[kidB] == 0 {
		t.Errorf("the load did not span the rotation: %v", kidsSeen)
	}
	kidsMu.Unlock()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed across the rotation: %v", failed.Load(), failures)
	}
	if out := fp.output(); !strings.Contains(out, "assertion signing keys changed") {
		t.Errorf("no log line for the rotation:\n%s", out)
	}
}
