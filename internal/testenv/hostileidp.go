package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HostileIdP is an OpenID provider whose every answer the test controls: a
// discovery document, a JWKS of keys the test holds (rotated or withdrawn
// at will, with any Cache-Control), redirects to another server instead of
// either document, oversized or slowly dripped bodies, and an authorization
// code flow whose ID tokens can lack or carry any claim. Tokens with any
// JOSE header (key confusion: alg none, HS256 keyed with the RSA public
// key, colliding kids, jku/x5u/jwk headers) are minted with its Token*
// methods. It counts the requests it serves.
//
// It exists because no real component misbehaves on demand: the npm
// oidc-provider behind StartOIDC is a certified OP that validates its own
// configuration and cannot be made to redirect its JWKS, pad it to 96 MiB,
// withdraw a key mid-test or sign an ID token without iat. Normal flows keep
// using StartOIDC; this server plays the broken or malicious IdP only.
type HostileIdP struct {
	// Issuer is http://127.0.0.1:<port>, no trailing slash.
	Issuer string
	// ClientID is the aud of the ID tokens it issues and the client it
	// expects at /token ("ztproxy").
	ClientID string

	srv *httptest.Server

	mu        sync.Mutex
	published []*SigningKey
	behaviour hostileBehaviour
	user      HostileUser
	codes     map[string]hostileAuthRequest

	lastUserinfoAuth string // guarded by mu

	discoveryFetches, jwksFetches, tokenRequests, userinfoRequests atomic.Int64
}

// hostileBehaviour is what the server does instead of behaving.
type hostileBehaviour struct {
	discoveryDown, jwksDown         bool
	advertisedIssuer                string
	redirectDiscovery, redirectJWKS string
	jwksCacheControl                string
	jwksPadding                     int
	jwksDrip                        time.Duration
	discoveryEdit                   func(map[string]any)
	idTokenEdit                     func(map[string]any)
	idTokenKey                      *SigningKey
	idTokenTTL                      time.Duration
	userinfo                        hostileUserinfo
}

// HostileUser is the end user the authorization endpoint signs in without
// asking.
type HostileUser struct {
	Sub, Email string
	Groups     []string
}

// StartHostileIdP starts the server on a free loopback port, publishing
// keys (the first also signs ID tokens), and stops it when the test ends.
func StartHostileIdP(t testing.TB, keys ...*SigningKey) *HostileIdP {
	t.Helper()
	h := &HostileIdP{
		ClientID: "ztproxy", published: keys, codes: map[string]hostileAuthRequest{},
		user:      HostileUser{Sub: "alice", Email: "alice@corp.test", Groups: []string{"eng"}},
		behaviour: hostileBehaviour{idTokenTTL: 5 * time.Minute},
	}
	if len(keys) > 0 {
		h.behaviour.idTokenKey = keys[0]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", h.serveDiscovery)
	mux.HandleFunc("GET /jwks", h.serveJWKS)
	mux.HandleFunc("GET /authorize", h.serveAuthorize)
	mux.HandleFunc("POST /token", h.serveToken)
	mux.HandleFunc("GET /userinfo", h.serveUserinfo)
	h.srv = httptest.NewServer(mux)
	h.Issuer = h.srv.URL
	t.Cleanup(h.srv.Close)
	return h
}

// JWKSURL is the URL of the key set it serves.
func (h *HostileIdP) JWKSURL() string { return h.Issuer + "/jwks" }

// DiscoveryURL is the URL of its discovery document.
func (h *HostileIdP) DiscoveryURL() string { return h.Issuer + "/.well-known/openid-configuration" }

// DiscoveryFetches, JWKSFetches and TokenRequests count the requests
// served (redirected and failed ones included).
func (h *HostileIdP) DiscoveryFetches() int64 { return h.discoveryFetches.Load() }

// JWKSFetches counts JWKS requests.
func (h *HostileIdP) JWKSFetches() int64 { return h.jwksFetches.Load() }

// TokenRequests counts token endpoint requests.
func (h *HostileIdP) TokenRequests() int64 { return h.tokenRequests.Load() }

func (h *HostileIdP) edit(f func(b *hostileBehaviour)) {
	h.mu.Lock()
	f(&h.behaviour)
	h.mu.Unlock()
}

func (h *HostileIdP) snapshot() (hostileBehaviour, []*SigningKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.behaviour, append([]*SigningKey(nil), h.published...)
}

// Publish replaces the published keys: a rotation, or a withdrawal when a
// key is left out.
func (h *HostileIdP) Publish(keys ...*SigningKey) {
	h.mu.Lock()
	h.published = keys
	h.mu.Unlock()
}

// SetDiscoveryDown makes the discovery document answer 503.
func (h *HostileIdP) SetDiscoveryDown(down bool) {
	h.edit(func(b *hostileBehaviour) { b.discoveryDown = down })
}

// SetJWKSDown makes the JWKS answer 503.
func (h *HostileIdP) SetJWKSDown(down bool) { h.edit(func(b *hostileBehaviour) { b.jwksDown = down }) }

// SetAdvertisedIssuer puts issuer in the discovery document instead of its
// own (another server impersonating this one, or a mismatch).
func (h *HostileIdP) SetAdvertisedIssuer(issuer string) {
	h.edit(func(b *hostileBehaviour) { b.advertisedIssuer = issuer })
}

// RedirectDiscovery answers the discovery request with a 302 to url ("" to
// stop).
func (h *HostileIdP) RedirectDiscovery(url string) {
	h.edit(func(b *hostileBehaviour) { b.redirectDiscovery = url })
}

// RedirectJWKS answers JWKS requests with a 302 to url ("" to stop).
func (h *HostileIdP) RedirectJWKS(url string) {
	h.edit(func(b *hostileBehaviour) { b.redirectJWKS = url })
}

// SetJWKSCacheControl sets the JWKS response's Cache-Control ("" for none).
func (h *HostileIdP) SetJWKSCacheControl(v string) {
	h.edit(func(b *hostileBehaviour) { b.jwksCacheControl = v })
}

// SetJWKSPadding makes the JWKS a valid document of about n extra bytes (an
// ignored member), streamed without Content-Length.
func (h *HostileIdP) SetJWKSPadding(n int) { h.edit(func(b *hostileBehaviour) { b.jwksPadding = n }) }

// SetJWKSDrip makes the JWKS body arrive one byte every d (a slow body).
func (h *HostileIdP) SetJWKSDrip(d time.Duration) {
	h.edit(func(b *hostileBehaviour) { b.jwksDrip = d })
}

// EditDiscovery changes the discovery document before it is served.
func (h *HostileIdP) EditDiscovery(f func(doc map[string]any)) {
	h.edit(func(b *hostileBehaviour) { b.discoveryEdit = f })
}

// EditIDTokens changes the claims of every ID token /token issues (delete a
// key to leave a claim out).
func (h *HostileIdP) EditIDTokens(f func(claims map[string]any)) {
	h.edit(func(b *hostileBehaviour) { b.idTokenEdit = f })
}

// SetUser sets the user the authorization endpoint signs in.
func (h *HostileIdP) SetUser(u HostileUser) {
	h.mu.Lock()
	h.user = u
	h.mu.Unlock()
}

func (h *HostileIdP) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	h.discoveryFetches.Add(1)
	b, _ := h.snapshot()
	if misbehave(w, r, b.redirectDiscovery, b.discoveryDown) {
		return
	}
	issuer := h.Issuer
	if b.advertisedIssuer != "" {
		issuer = b.advertisedIssuer
	}
	doc := map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              h.JWKSURL(),
		"authorization_endpoint":                h.Issuer + "/authorize",
		"token_endpoint":                        h.Issuer + "/token",
		"userinfo_endpoint":                     h.UserinfoURL(),
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	if b.discoveryEdit != nil {
		b.discoveryEdit(doc)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

func (h *HostileIdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	h.jwksFetches.Add(1)
	b, keys := h.snapshot()
	if misbehave(w, r, b.redirectJWKS, b.jwksDown) {
		return
	}
	jwks := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		jwks = append(jwks, k.JWK())
	}
	doc, _ := json.Marshal(map[string]any{"keys": jwks})
	w.Header().Set("Content-Type", "application/json")
	if b.jwksCacheControl != "" {
		w.Header().Set("Cache-Control", b.jwksCacheControl)
	}
	if b.jwksPadding > 0 {
		// Valid JSON all the way: the keys, then one huge ignored member.
		writePadded(w, doc, b.jwksPadding)
		return
	}
	if b.jwksDrip > 0 {
		h.drip(w, r, doc, b.jwksDrip)
		return
	}
	w.Write(doc)
}

// misbehave answers with a redirect to redirect, or 503 when down, and
// reports whether it did.
func misbehave(w http.ResponseWriter, r *http.Request, redirect string, down bool) bool {
	switch {
	case redirect != "":
		http.Redirect(w, r, redirect, http.StatusFound)
	case down:
		http.Error(w, "down", http.StatusServiceUnavailable)
	default:
		return false
	}
	return true
}

// drip writes body one byte every d, stopping when the client goes away.
func (h *HostileIdP) drip(w http.ResponseWriter, r *http.Request, body []byte, d time.Duration) {
	flusher, _ := w.(http.Flusher)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(d):
		}
	}
}

// String describes the server for test logs.
func (h *HostileIdP) String() string { return fmt.Sprintf("hostile IdP %s", h.Issuer) }
