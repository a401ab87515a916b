package idheaders

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"ztproxy/identity"
)

// Signer issues the X-Ztp-Assertion JWT (ES256, signed with go-jose) that
// tells an upstream who the caller is. Tokens are short-lived and cached
// per (route, principal, device) until half their lifetime has passed, so
// the hot path rarely pays for an ECDSA signature.
//
// Its keys can change while it serves (SetKeys, on reload): a rotation
// publishes the next key before it signs with it and keeps the previous
// one published after (docs/identity-headers.md#rotating-the-signing-key).
type Signer struct {
	keys      atomic.Pointer[signingKeys]
	generated *ecdsa.PrivateKey // the key made at start when none was configured
	seed      maphash.Seed

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
	kid       string // the key that signed token: a rotation makes it stale
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

// NewSigner prepares a signer that signs with key and also publishes the
// published keys (the next and previous keys of a rotation). key nil
// generates an ephemeral P-256 key (fine for one replica; replicas behind
// one load balancer should share key files so any of them verifies the
// same JWKS).
func NewSigner(key *ecdsa.PrivateKey, published ...*ecdsa.PublicKey) (*Signer, error) {
	s := &Signer{seed: maphash.MakeSeed()}
	s.cache, _ = simplelru.NewLRU[assertionKey, assertionEntry](DefaultAssertionCacheSize, nil)
	if _, err := s.SetKeys(key, published); err != nil {
		return nil, err
	}
	return s, nil
}

// SetKeys makes current the signing key and publishes it with published.
// current nil keeps (or makes, the first time) the generated key. It
// reports whether the signing key or the published set changed; assertions
// cached under another signing key are not served again.
func (s *Signer) SetKeys(current *ecdsa.PrivateKey, published []*ecdsa.PublicKey) (changed bool, err error) {
	if current == nil {
		if s.generated == nil {
			if s.generated, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				return false, fmt.Errorf("assertion: generate key: %w", err)
			}
		}
		current = s.generated
	}
	if current.Curve != elliptic.P256() {
		return false, errors.New("assertion: signing key must be EC P-256")
	}
	keys, err := newSigningKeys(current, published)
	if err != nil {
		return false, err
	}
	old := s.keys.Swap(keys)
	return old == nil || old.kid != keys.kid || !bytes.Equal(old.jwks, keys.jwks), nil
}

// JWKS returns the published key set.
func (s *Signer) JWKS() []byte { return s.keys.Load().jwks }

// KeyIDs returns the kid of the signing key and of every published key
// (the signing key first). Key ids are public.
func (s *Signer) KeyIDs() (signing string, published []string) {
	k := s.keys.Load()
	return k.kid, slices.Clone(k.kids)
}

// Assertion returns a token for this request, from cache when a fresh one
// exists.
func (s *Signer) Assertion(issuer string, rc *identity.RequestContext, ttl time.Duration, now time.Time) (string, error) {
	p := &rc.Principal
	key := assertionKey{
		issuer: issuer, route: rc.Route, principal: p.ID, device: rc.Device.Fingerprint,
		session: p.SessionID, details: s.detailsHash(p), expiry: p.Expiry.Unix(),
	}
	keys := s.keys.Load()
	s.mu.Lock()
	e, ok := s.cache.Get(key)
	s.mu.Unlock()
	if ok && e.kid == keys.kid && now.Before(e.refreshAt) {
		return e.token, nil
	}
	exp := now.Add(ttl)
	if !p.Expiry.IsZero() && p.Expiry.Before(exp) {
		exp = p.Expiry
	}
	token, err := s.sign(keys, issuer, rc, now, exp)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.cache.Add(key, assertionEntry{kid: keys.kid, token: token, expires: exp, refreshAt: now.Add(exp.Sub(now) / 2)})
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

func (s *Signer) sign(keys *signingKeys, issuer string, rc *identity.RequestContext, now, exp time.Time) (string, error) {
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
	return keys.sign(payload)
}
