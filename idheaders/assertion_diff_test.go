package idheaders_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/authn"
	"ztproxy/identity"
	"ztproxy/idheaders"
)

const testIssuer = "https://access.example.com"

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func requestFor(route, user string) *identity.RequestContext {
	return &identity.RequestContext{
		Route: route,
		Principal: identity.Principal{Kind: identity.KindUser, ID: "https://idp.example#" + user, Email: user + "@example.com",
			EmailVerified: true, Groups: []string{"eng"}, AuthKind: identity.AuthBearer, IdP: "corp"},
	}
}

// handWrittenKID is the RFC 7638 thumbprint exactly as the hand-written JWS
// code computed it before issue 19: kids must not change with go-jose, or
// upstreams caching the JWKS would see every key as new.
func handWrittenKID(pub *ecdsa.PublicKey) string {
	raw, _ := pub.Bytes()
	x := base64.RawURLEncoding.EncodeToString(raw[1:33])
	y := base64.RawURLEncoding.EncodeToString(raw[33:65])
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return base64.RawURLEncoding.EncodeToString(thumb[:])
}

// verifyByHand checks a token the way a minimal upstream without a JOSE
// library would (and the hand-written signer produced): header
// {"alg":"ES256","typ":"JWT","kid":…}, a 64-byte r||s signature.
func verifyByHand(t *testing.T, token string, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	var hdr map[string]string
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr["alg"] != "ES256" || hdr["typ"] != "JWT" || hdr["kid"] != handWrittenKID(pub) || len(hdr) != 3 {
		t.Fatalf("header %s (%v)", raw, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature: %d bytes, %v", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature does not verify")
	}
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestAssertionDifferential: issue 19 replaced the hand-written JWS code
// with go-jose. The tokens must still be accepted by every verifier that
// accepted them: the byte-level check above, ztproxy's own sidecar verifier
// (authn.AssertionVerifier), and the two upstream examples of
// docs/identity-headers.md (go-oidc's RemoteKeySet verifier; go-jose's jwt
// package).
func TestAssertionDifferential(t *testing.T) {
	key := newKey(t)
	s, err := idheaders.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	token, err := s.Assertion(testIssuer, requestFor("api", "alice"), time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if claims := verifyByHand(t, token, &key.PublicKey); claims["sub"] != "https://idp.example#alice" || claims["aud"] != "api" || claims["iss"] != testIssuer {
		t.Errorf("claims %v", claims)
	}
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(s.JWKS())
	}))
	defer jwksSrv.Close()

	t.Run("go-oidc RemoteKeySet (docs example)", func(t *testing.T) {
		v := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(context.Background(), jwksSrv.URL),
			&oidc.Config{ClientID: "api", SupportedSigningAlgs: []string{"ES256"}})
		tok, err := v.Verify(context.Background(), token)
		if err != nil || tok.Subject != "https://idp.example#alice" {
			t.Fatalf("%v %+v", err, tok)
		}
	})
	t.Run("go-jose jwt (docs example)", func(t *testing.T) {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(s.JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(parsed.Headers[0].KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q: %d keys", parsed.Headers[0].KeyID, len(keys))
		}
		var claims jwt.Claims
		if err := parsed.Claims(keys[0].Key, &claims); err != nil {
			t.Fatal(err)
		}
		if err := claims.Validate(jwt.Expected{Issuer: testIssuer, AnyAudience: jwt.Audience{"api"}, Time: now}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("sidecar verifier", func(t *testing.T) {
		v, err := authn.NewAssertionVerifier(authn.AssertionConfig{Sources: []string{jwksSrv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := v.Verify(context.Background(), token, "api")
		if err != nil || p.ID != "https://idp.example#alice" || p.Email != "alice@example.com" {
			t.Fatalf("%v %+v", err, p)
		}
		if _, _, err := v.Verify(context.Background(), token, "billing"); err == nil {
			t.Error("assertion for api accepted for billing")
		}
	})
	t.Run("published key set", func(t *testing.T) {
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal(s.JWKS(), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("%s %v", s.JWKS(), err)
		}
		k := set.Keys[0]
		if k["kid"] != handWrittenKID(&key.PublicKey) || k["alg"] != "ES256" || k["use"] != "sig" || k["kty"] != "EC" || k["crv"] != "P-256" || k["d"] != "" {
			t.Errorf("JWK %v", k)
		}
	})
}

// TestSignerRotation: issue 19, one signing key, rotated only by a
// restart. Keys now change in place: the next key is published before it
// signs, the previous one stays published after, and no assertion cached
// under the old key is served once the new one signs.
func TestSignerRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	s, err := idheaders.NewSigner(oldKey, &newKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	oldKID, newKID := handWrittenKID(&oldKey.PublicKey), handWrittenKID(&newKey.PublicKey)
	if kid, kids := s.KeyIDs(); kid != oldKID || !slices.Equal(kids, []string{oldKID, newKID}) {
		t.Fatalf("staged: signing %s, published %v", kid, kids)
	}
	now := time.Now()
	before, _ := s.Assertion(testIssuer, requestFor("api", "alice"), time.Minute, now)
	if again, _ := s.Assertion(testIssuer, requestFor("api", "alice"), time.Minute, now.Add(time.Second)); again != before {
		t.Error("assertion not cached")
	}
	changed, err := s.SetKeys(newKey, []*ecdsa.PublicKey{&oldKey.PublicKey})
	if err != nil || !changed {
		t.Fatalf("promote: %v %v", changed, err)
	}
	after, _ := s.Assertion(testIssuer, requestFor("api", "alice"), time.Minute, now.Add(2*time.Second))
	if after == before {
		t.Fatal("the assertion cached under the old key was served after the rotation")
	}
	verifyByHand(t, after, &newKey.PublicKey)
	verifyByHand(t, before, &oldKey.PublicKey)
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, s.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := authn.NewAssertionVerifier(authn.AssertionConfig{Sources: []string{jwks}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"before": before, "after": after} {
		if _, _, err := v.Verify(context.Background(), tok, "api"); err != nil {
			t.Errorf("%s the rotation: %v", name, err)
		}
	}
	if changed, _ := s.SetKeys(newKey, []*ecdsa.PublicKey{&oldKey.PublicKey}); changed {
		t.Error("the same keys reported as a change")
	}
	if changed, _ := s.SetKeys(newKey, nil); !changed {
		t.Error("retiring the previous key not reported")
	}
	if _, kids := s.KeyIDs(); !slices.Equal(kids, []string{newKID}) {
		t.Errorf("retired: published %v", kids)
	}
}

// TestSignerGeneratedKeyKept: without key files the key generated at start
// signs for the life of the process; a reload does not replace it.
func TestSignerGeneratedKeyKept(t *testing.T) {
	s, err := idheaders.NewSigner(nil)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := s.KeyIDs()
	if changed, err := s.SetKeys(nil, nil); err != nil || changed {
		t.Fatalf("reload without keys: changed %v, %v", changed, err)
	}
	if again, _ := s.KeyIDs(); again != kid {
		t.Errorf("generated key replaced: %s → %s", kid, again)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := s.SetKeys(p384, nil); err == nil {
		t.Error("P-384 key accepted")
	}
}
