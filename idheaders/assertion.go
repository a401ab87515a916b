package idheaders

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"ztproxy/identity"
)

// Signer issues the X-Ztp-Assertion JWT (ES256) that tells an
// upstream who the caller is. Tokens are short-lived and cached per
// (route, principal, device) until half their lifetime has passed, so the
// hot path rarely pays for an ECDSA signature.
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	header string // base64url of the JOSE header, precomputed
	jwks   []byte // published key set
	seed   maphash.Seed

	mu    sync.Mutex
	cache *simplelru.LRU[assertionKey, assertionEntry]
}

// DefaultAssertionCacheSize bounds the cache unless SetCacheSize says
// otherwise. When full, the least recently used assertion goes (issue 23:
// the cache used to empty itself, and every active caller needed a new
// signature at once).
const DefaultAssertionCacheSize = 50000

// SetCacheSize bounds the assertion cache to n entries (n >= 1) and
// empties it. Call it before the signer is in use.
func (s *Signer) SetCacheSize(n int) error {
	c, err := simplelru.NewLRU[assertionKey, assertionEntry](n, nil)
	if err != nil {
		return fmt.Errorf("assertion: cache size %d: %w", n, err)
	}
	s.mu.Lock()
	s.cache = c
	s.mu.Unlock()
	return nil
}

type assertionKey struct {
	issuer, route, principal, device, session string
	details                                   uint64 // hash of groups, amr, acr, email
	expiry                                    int64
}

type assertionEntry struct {
	token     string
	expires   time.Time
	refreshAt time.Time
}

// assertionClaims are the claims of an identity assertion.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub"`
	Email    string `json:"email,omitempty"`
	// EmailVerified lets a sidecar's policy require a verified address.
	EmailVerified bool     `json:"email_verified,omitempty"`
	Groups        []string `json:"groups"`
	Kind          string   `json:"kind"`
	AuthMethod    string   `json:"auth"`
	AMR           []string `json:"amr,omitempty"`
	ACR           string   `json:"acr,omitempty"`
	AuthTime      int64    `json:"auth_time,omitempty"`
	Device        string   `json:"device,omitempty"`
	DeviceFP      string   `json:"device_fp,omitempty"`
	IdP           string   `json:"idp,omitempty"`
	IssuedAt      int64    `json:"iat"`
	NotBefore     int64    `json:"nbf"`
	Expiry        int64    `json:"exp"`
	ID            string   `json:"jti"`
}

// NewSigner prepares a signer; key nil generates an ephemeral
// P-256 key (fine for one replica; replicas behind one load balancer
// should share a key file so any of them verifies the same JWKS).
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("assertion: generate key: %w", err)
		}
	}
	if key.Curve != elliptic.P256() {
		return nil, errors.New("assertion: signing key must be EC P-256")
	}
	jwk := publicJWK(&key.PublicKey)
	s := &Signer{key: key, kid: jwk["kid"], seed: maphash.MakeSeed()}
	s.cache, _ = simplelru.NewLRU[assertionKey, assertionEntry](DefaultAssertionCacheSize, nil)
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": s.kid})
	s.header = base64.RawURLEncoding.EncodeToString(hdr)
	s.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{jwk}})
	return s, nil
}

// publicJWK renders an EC P-256 public key as a JWK with its RFC 7638
// thumbprint as kid.
func publicJWK(pub *ecdsa.PublicKey) map[string]string {
	raw, _ := pub.Bytes() // uncompressed point 0x04 || X || Y
	x := base64.RawURLEncoding.EncodeToString(raw[1:33])
	y := base64.RawURLEncoding.EncodeToString(raw[33:65])
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return map[string]string{
		"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256",
		"kid": base64.RawURLEncoding.EncodeToString(thumb[:]),
	}
}

// JWKS returns the published key set.
func (s *Signer) JWKS() []byte { return s.jwks }

// Assertion returns a token for this request, from cache when a fresh one
// exists.
func (s *Signer) Assertion(issuer string, rc *identity.RequestContext, ttl time.Duration, now time.Time) (string, error) {
	p := &rc.Principal
	key := assertionKey{
		issuer: issuer, route: rc.Route, principal: p.ID, device: rc.Device.Fingerprint,
		session: p.SessionID, details: s.detailsHash(p), expiry: p.Expiry.Unix(),
	}
	s.mu.Lock()
	e, ok := s.cache.Get(key)
	s.mu.Unlock()
	if ok && now.Before(e.refreshAt) {
		return e.token, nil
	}
	exp := now.Add(ttl)
	if !p.Expiry.IsZero() && p.Expiry.Before(exp) {
		exp = p.Expiry
	}
	token, err := s.sign(issuer, rc, now, exp)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.cache.Add(key, assertionEntry{token: token, expires: exp, refreshAt: now.Add(exp.Sub(now) / 2)})
	s.mu.Unlock()
	return token, nil
}

func (s *Signer) detailsHash(p *identity.Principal) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(p.Email)
	h.WriteByte(0)
	if p.EmailVerified {
		h.WriteByte(1)
	}
	h.WriteString(p.ACR)
	h.WriteByte(0)
	h.WriteString(string(p.AuthKind))
	for _, g := range p.Groups {
		h.WriteByte(1)
		h.WriteString(g)
	}
	for _, m := range p.AMR {
		h.WriteByte(2)
		h.WriteString(m)
	}
	var buf [8]byte
	at := p.AuthTime.Unix()
	for i := range buf {
		buf[i] = byte(at >> (8 * i))
	}
	h.Write(buf[:])
	return h.Sum64()
}

func (s *Signer) sign(issuer string, rc *identity.RequestContext, now, exp time.Time) (string, error) {
	p := &rc.Principal
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := assertionClaims{
		Issuer: issuer, Audience: rc.Route, Subject: p.ID, Email: p.Email, EmailVerified: p.EmailVerified, Groups: p.Groups,
		Kind: string(p.Kind), AuthMethod: string(p.AuthKind), AMR: p.AMR, ACR: p.ACR,
		Device: rc.Device.ID, DeviceFP: rc.Device.Fingerprint, IdP: p.IdP,
		IssuedAt: now.Unix(), NotBefore: now.Unix() - 5, Expiry: exp.Unix(),
		ID: base64.RawURLEncoding.EncodeToString(jti[:]),
	}
	if claims.Groups == nil {
		claims.Groups = []string{}
	}
	if !p.AuthTime.IsZero() {
		claims.AuthTime = p.AuthTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("assertion: %w", err)
	}
	signingInput := s.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signingInput))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	var raw [64]byte
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(raw[:]), nil
}
