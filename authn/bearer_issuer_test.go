package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKey is a signing key with its kid and algorithm.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
	pub  any
}

var (
	testKeysOnce sync.Once
	testRSA      [3]*rsa.PrivateKey
	testEC       *ecdsa.PrivateKey
)

// loadTestKeys generates the package's keys once; RSA generation is slow
// enough to matter when every test does it.
func loadTestKeys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		for i := range testRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testRSA[i] = k
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		testEC = k
	})
}

func rsaKey(t testing.TB, i int, kid string) testKey {
	loadTestKeys(t)
	return testKey{kid: kid, alg: jose.RS256, priv: testRSA[i], pub: &testRSA[i].PublicKey}
}

func ecKey(t testing.TB, kid string) testKey {
	loadTestKeys(t)
	return testKey{kid: kid, alg: jose.ES256, priv: testEC, pub: &testEC.PublicKey}
}

// testIssuer is an in-process OIDC issuer: a discovery document and a JWKS
// whose availability and content tests can change, with request counters.
type testIssuer struct {
	t   testing.TB
	srv *httptest.Server

	mu   sync.Mutex
	keys []testKey // published in the JWKS

	discoveryDown atomic.Bool
	jwksDown      atomic.Bool
	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
	// advertisedIssuer, when set, replaces the issuer in the discovery
	// document (to test mismatch).
	advertisedIssuer atomic.Pointer[string]
}

func newTestIssuer(t testing.TB, keys ...testKey) *testIssuer {
	t.Helper()
	iss := &testIssuer{t: t, keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	mux.HandleFunc("GET /jwks", iss.serveJWKS)
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

// URL is the issuer identifier, exactly as in its tokens.
func (s *testIssuer) URL() string { return s.srv.URL }

func (s *testIssuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	s.discoveryHits.Add(1)
	if s.discoveryDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	issuer := s.URL()
	if p := s.advertisedIssuer.Load(); p != nil {
		issuer = *p
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              s.URL() + "/jwks",
		"authorization_endpoint":                s.URL() + "/authorize",
		"token_endpoint":                        s.URL() + "/token",
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	})
}

func (s *testIssuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.jwksHits.Add(1)
	if s.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	var set jose.JSONWebKeySet
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// setKeys replaces the published keys (key rotation).
func (s *testIssuer) setKeys(keys ...testKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// sign returns a compact JWS of claims signed with key.
func sign(t testing.TB, key testKey, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: key.alg,
		Key:       jose.JSONWebKey{Key: key.priv, KeyID: key.kid},
	}, opts)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsignedToken builds an alg=none token by hand; go-jose refuses to.
func unsignedToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`)) + "." + enc.EncodeToString(payload) + "."
}

// testClock is a settable clock for the verifier.
type testClock struct{ now atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *testClock) set(t time.Time)         { c.now.Store(t.UnixNano()) }
func (c *testClock) advance(d time.Duration) { c.now.Add(int64(d)) }

// testEpoch is the fixed "now" of the tests, on a whole second so NumericDate
// claims round-trip exactly.
var testEpoch = time.Unix(1_900_000_000, 0)

// baseClaims are valid claims for iss at testEpoch; tests override fields.
func baseClaims(iss string) map[string]any {
	return map[string]any{
		"iss":            iss,
		"sub":            "user-123",
		"aud":            "my-client",
		"iat":            testEpoch.Unix(),
		"exp":            testEpoch.Add(time.Hour).Unix(),
		"email":          "ada@example.com",
		"email_verified": true,
	}
}

func withClaims(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
