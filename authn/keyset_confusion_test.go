package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"ztproxy/internal/testenv"
)

// TestKeySetKeyConfusion: tokens that try to choose their own key, or use
// a published key with another algorithm, are refused.
func TestKeySetKeyConfusion(t *testing.T) {
	k1, k2 := hostileKeys(t)
	ec := testenv.NewECSigningKey(t, "ec1")
	attacker := testenv.NewRSASigningKey(t, "k1", 2) // same kid as k1, other key
	dup1 := &testenv.SigningKey{KID: "dup", Alg: "RS256", Private: k1.Private}
	dup2 := &testenv.SigningKey{KID: "dup", Alg: "RS256", Private: k2.Private}
	f := newKeySetFixture(t, KeyRefresh{}, nil, k1, ec, dup1, dup2)
	claims := map[string]any{"iss": f.idp.Issuer, "sub": "alice"}
	attackerJWK := attacker.JWK()

	for _, tc := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"valid RS256", f.token(k1, nil), true},
		{"valid ES256", f.token(ec, nil), true},
		{"colliding kid, first key", f.token(dup1, nil), true},
		{"colliding kid, second key", f.token(dup2, nil), true},
		{"colliding kid, attacker key", f.token(&testenv.SigningKey{KID: "dup", Alg: "RS256", Private: attacker.Private}, nil), false},
		{"known kid, attacker key", f.token(attacker, nil), false},
		{"alg none", testenv.UnsignedToken(map[string]any{"kid": "k1"}, claims), false},
		{"HS256 keyed with the RSA public key", testenv.HMACToken(k1.PublicKeyDER(), map[string]any{"kid": "k1"}, claims), false},
		{"jku header", f.token(attacker, map[string]any{"kid": "evil", "jku": "http://127.0.0.1:1/jwks"}), false},
		{"x5u header", f.token(k1, map[string]any{"x5u": "http://127.0.0.1:1/cert"}), false},
		{"jwk header with the signing key", f.token(attacker, map[string]any{"jwk": attackerJWK}), false},
		{"jwk header on a valid signature", f.token(k1, map[string]any{"jwk": k1.JWK()}), false},
		{"x5c header", f.token(k1, map[string]any{"x5c": []string{"MIIB"}}), false},
		{"ES256 under an RSA kid", f.token(&testenv.SigningKey{KID: "k1", Alg: "ES256", Private: ec.Private}, nil), false},
		{"RSA key with PS256 though its JWK says RS256", signJOSE(t, k1, jose.PS256, claims), false},
		{"oversized kid", f.token(k1, map[string]any{"kid": strings.Repeat("k", maxKIDBytes+1)}), false},
		{"no kid, published key", f.token(k1, map[string]any{"kid": nil}), true},
		{"no kid, attacker key", f.token(attacker, map[string]any{"kid": nil}), false},
		{"JSON serialization", jsonSerialized(t, k1, claims), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verify(tc.raw)
			if (err == nil) != tc.ok {
				t.Errorf("verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// signJOSE signs claims with key's private key under alg via go-jose.
func signJOSE(t *testing.T, key *testenv.SigningKey, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.KID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// jsonSerialized is a validly signed token in the JWS JSON serialization,
// which no IdP token uses.
func jsonSerialized(t *testing.T, key *testenv.SigningKey, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(testenv.Token(key, claims), ".")
	return fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, parts[0], parts[1], parts[2])
}

// TestParseJWKS: only public signature keys are taken from a JWKS.
func TestParseJWKS(t *testing.T) {
	k1, _ := hostileKeys(t)
	good, _ := json.Marshal(k1.JWK())
	ec := testenv.NewECSigningKey(t, "ec")
	private, _ := json.Marshal(jose.JSONWebKey{Key: ec.Private, KeyID: "leaked", Algorithm: "ES256"})
	doc := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }
	many := make([]string, maxJWKSKeys+1)
	for i := range many {
		many[i] = string(good)
	}
	for _, tc := range []struct {
		name, body string
		want       int // keys, or -1 for an error
	}{
		{"one key", doc(string(good)), 1},
		{"encryption key skipped", doc(string(good), strings.Replace(string(good), `"use":"sig"`, `"use":"enc"`, 1)), 1},
		{"symmetric key skipped", doc(string(good), `{"kty":"oct","kid":"h","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`), 1},
		{"published private key refused", doc(string(private)), -1},
		{"short RSA key refused", doc(`{"kty":"RSA","kid":"short","n":"` + strings.Repeat("A", 170) + `","e":"AQAB"}`), -1},
		{"unparsable key skipped", doc(string(good), `{"kty":"RSA","n":1}`), 1},
		{"too many keys", doc(many...), -1},
		{"no keys member", `{"foo":[]}`, -1},
		{"not JSON", `<html>`, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tc.body))
			switch {
			case tc.want < 0 && err == nil:
				t.Errorf("parsed %d keys, want an error", len(keys))
			case tc.want >= 0 && (err != nil || len(keys) != tc.want):
				t.Errorf("got %d keys, %v; want %d", len(keys), err, tc.want)
			}
		})
	}
}

// FuzzKeySetVerify feeds arbitrary tokens to header parsing and key
// selection over a static key set: nothing panics, and whatever verifies
// was signed by the set's key under an allowed algorithm.
func FuzzKeySetVerify(f *testing.F) {
	k1 := testenv.NewRSASigningKey(f, "k1", 0)
	claims := map[string]any{"iss": "https://idp.example", "sub": "alice"}
	for _, seed := range []string{
		testenv.Token(k1, claims),
		testenv.TokenWithHeader(k1, map[string]any{"kid": nil}, claims),
		testenv.TokenWithHeader(k1, map[string]any{"jku": "https://evil"}, claims),
		testenv.UnsignedToken(map[string]any{"kid": "k1"}, claims),
		testenv.HMACToken(k1.PublicKeyDER(), map[string]any{"kid": "k1"}, claims),
		"", ".", "..", "a.b.c", "eyJhbGciOiJSUzI1NiJ9..", `{"protected":"e30","payload":"","signature":""}`,
	} {
		f.Add(seed)
	}
	var jwk jose.JSONWebKey
	raw, _ := json.Marshal(k1.JWK())
	if err := jwk.UnmarshalJSON(raw); err != nil {
		f.Fatal(err)
	}
	ks, err := NewKeySet(KeySetConfig{Name: "fuzz", Static: []jose.JSONWebKey{jwk}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		payload, key, err := ks.verify(context.Background(), token, true)
		if err != nil {
			return
		}
		p, perr := parseJWS(token, ks.algs)
		if perr != nil || key == nil || key.kid != "k1" || (p.kid != "" && p.kid != "k1") {
			t.Fatalf("verified %q with key %v (parse: %v)", token, key, perr)
		}
		if _, err := p.jws.Verify(key.public); err != nil || payload == nil {
			t.Fatalf("verified %q but go-jose disagrees: %v", token, err)
		}
	})
}

// FuzzParseJWKS: arbitrary key set documents never panic and never yield
// a key that could not verify a signature.
func FuzzParseJWKS(f *testing.F) {
	k1 := testenv.NewRSASigningKey(f, "k1", 0)
	good, _ := json.Marshal(map[string]any{"keys": []any{k1.JWK()}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > maxJWKSKeys {
			t.Fatalf("%d keys without an error", len(keys))
		}
		for _, k := range keys {
			if !keyFitsAnyAlg(k.public) {
				t.Fatalf("unusable key %T accepted", k.public)
			}
		}
	})
}

func keyFitsAnyAlg(pub any) bool {
	for _, alg := range supportedAlgs {
		if keyFitsAlg(pub, alg) {
			return true
		}
	}
	return false
}

// FuzzJWKSTTL: whatever Cache-Control and Age an IdP sends, a key set is
// kept between MinRefetchInterval and Interval.
func FuzzJWKSTTL(f *testing.F) {
	for _, seed := range [][2]string{{"max-age=60", ""}, {"no-store", ""}, {"max-age=100", "80"}, {"max-age=-1", "x"}, {`max-age="9"`, "999999999999"}} {
		f.Add(seed[0], seed[1])
	}
	refresh := KeyRefresh{}
	if err := refresh.CheckAndSetDefaults(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cacheControl, age string) {
		ttl := jwksTTL(http.Header{"Cache-Control": {cacheControl}, "Age": {age}}, refresh)
		if ttl < refresh.MinRefetchInterval || ttl > refresh.Interval {
			t.Fatalf("Cache-Control %q Age %q: ttl %s outside [%s, %s]", cacheControl, age, ttl, refresh.MinRefetchInterval, refresh.Interval)
		}
	})
}
