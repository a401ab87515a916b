package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"ztproxy/internal/testenv"
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

// testIssuer is the hostile test IdP (testenv.HostileIdP) serving the
// package's test keys.
type testIssuer struct {
	*testenv.HostileIdP
}

func newTestIssuer(t testing.TB, keys ...testKey) *testIssuer {
	t.Helper()
	return &testIssuer{testenv.StartHostileIdP(t, signingKeys(keys)...)}
}

// URL is the issuer identifier, exactly as in its tokens.
func (s *testIssuer) URL() string { return s.Issuer }

// setKeys replaces the published keys (key rotation or withdrawal).
func (s *testIssuer) setKeys(keys ...testKey) { s.Publish(signingKeys(keys)...) }

func signingKeys(keys []testKey) []*testenv.SigningKey {
	out := make([]*testenv.SigningKey, len(keys))
	for i, k := range keys {
		out[i] = &testenv.SigningKey{KID: k.kid, Alg: string(k.alg), Private: k.priv.(crypto.Signer)}
	}
	return out
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
