package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// SigningKey is a key a HostileIdP publishes or a test signs with.
type SigningKey struct {
	KID     string
	Alg     string // RS256 or ES256
	Private crypto.Signer
}

var (
	rsaKeyPoolMu sync.Mutex
	rsaKeyPool   []*rsa.PrivateKey
)

// NewRSASigningKey returns an RS256 key (2048 bits) with kid. Generated keys
// are pooled per test binary, so the n-th call returns the same RSA key in
// every test: generation is slow enough to matter.
func NewRSASigningKey(t testing.TB, kid string, n int) *SigningKey {
	t.Helper()
	rsaKeyPoolMu.Lock()
	defer rsaKeyPoolMu.Unlock()
	for len(rsaKeyPool) <= n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatalf("testenv: RSA key: %v", err)
		}
		rsaKeyPool = append(rsaKeyPool, k)
	}
	return &SigningKey{KID: kid, Alg: "RS256", Private: rsaKeyPool[n]}
}

// NewECSigningKey returns a fresh ES256 (P-256) key with kid.
func NewECSigningKey(t testing.TB, kid string) *SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: EC key: %v", err)
	}
	return &SigningKey{KID: kid, Alg: "ES256", Private: k}
}

var b64 = base64.RawURLEncoding

// JWK returns the public key as a JWK with kid, alg and use "sig".
func (k *SigningKey) JWK() map[string]string {
	jwk := map[string]string{"kid": k.KID, "alg": k.Alg, "use": "sig"}
	switch pub := k.Private.Public().(type) {
	case *rsa.PublicKey:
		jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64.EncodeToString(pub.N.Bytes()), b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes()
		jwk["kty"], jwk["crv"], jwk["x"], jwk["y"] = "EC", "P-256", b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:65])
	}
	return jwk
}

// PublicKeyDER is the PKIX DER of the public key: the "secret" a
// key-confusion attack uses as an HMAC key.
func (k *SigningKey) PublicKeyDER() []byte {
	der, _ := x509.MarshalPKIXPublicKey(k.Private.Public())
	return der
}

// Token signs claims with key under the header {alg, kid, typ: JWT}.
func Token(key *SigningKey, claims map[string]any) string {
	return TokenWithHeader(key, nil, claims)
}

// TokenWithHeader signs claims with key; header entries are added to (or,
// with a nil value, removed from) {alg, kid, typ}, so a test can set any
// kid or add jku, x5u, jwk or x5c.
func TokenWithHeader(key *SigningKey, header, claims map[string]any) string {
	h := map[string]any{"alg": key.Alg, "kid": key.KID, "typ": "JWT"}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	input := encodeSegment(h) + "." + encodeSegment(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch priv := key.Private.(type) {
	case *rsa.PrivateKey:
		sig, _ = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
	case *ecdsa.PrivateKey:
		r, s, _ := ecdsa.Sign(rand.Reader, priv, digest[:])
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64.EncodeToString(sig)
}

// UnsignedToken is an alg "none" token with header entries added.
func UnsignedToken(header, claims map[string]any) string {
	h := map[string]any{"alg": "none", "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	return encodeSegment(h) + "." + encodeSegment(claims) + "."
}

// HMACToken is an HS256 token keyed with secret (key confusion: the
// secret is a public key the verifier knows).
func HMACToken(secret []byte, header, claims map[string]any) string {
	h := map[string]any{"alg": "HS256", "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	input := encodeSegment(h) + "." + encodeSegment(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

func encodeSegment(v any) string {
	data, _ := json.Marshal(v)
	return b64.EncodeToString(data)
}

// Claims returns valid access-token claims for sub: iss, sub, aud, iat,
// exp (in ttl), email and email_verified true.
func (h *HostileIdP) Claims(sub, aud string, ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": h.Issuer, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
		"email": sub + "@corp.test", "email_verified": true,
	}
}

// hostileAuthRequest is an issued authorization code.
type hostileAuthRequest struct {
	clientID, redirectURI, nonce, challenge string
}

// serveAuthorize signs the configured user in without a form and sends the
// browser back with a code, like an IdP with a remembered session.
func (h *HostileIdP) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	h.mu.Lock()
	h.codes[code] = hostileAuthRequest{
		clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
	}
	h.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	back.Set("iss", h.Issuer)
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// serveToken redeems a code (checking redirect_uri and the PKCE verifier)
// or a refresh token, and issues an ID token edited by EditIDTokens.
func (h *HostileIdP) serveToken(w http.ResponseWriter, r *http.Request) {
	h.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	nonce := ""
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		h.mu.Lock()
		req, ok := h.codes[r.PostForm.Get("code")]
		delete(h.codes, r.PostForm.Get("code"))
		h.mu.Unlock()
		verifier := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || req.redirectURI != r.PostForm.Get("redirect_uri") || b64.EncodeToString(verifier[:]) != req.challenge {
			tokenError(w, "invalid_grant")
			return
		}
		nonce = req.nonce
	case "refresh_token":
		if r.PostForm.Get("refresh_token") == "" {
			tokenError(w, "invalid_grant")
			return
		}
	default:
		tokenError(w, "unsupported_grant_type")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": randomString(), "token_type": "Bearer", "expires_in": 300,
		"refresh_token": randomString(), "id_token": h.idToken(nonce),
	})
}

// idToken mints an ID token for the configured user.
func (h *HostileIdP) idToken(nonce string) string {
	b, _ := h.snapshot()
	h.mu.Lock()
	u := h.user
	h.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": h.Issuer, "sub": u.Sub, "aud": h.ClientID, "iat": now.Unix(), "exp": now.Add(b.idTokenTTL).Unix(),
		"auth_time": now.Unix(), "email": u.Email, "email_verified": true, "groups": u.Groups,
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if b.idTokenEdit != nil {
		b.idTokenEdit(claims)
	}
	return Token(b.idTokenKey, claims)
}

func tokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func randomString() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return b64.EncodeToString(b[:])
}
