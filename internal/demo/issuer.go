package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// User is a demo account.
type User struct {
	Sub, Email, Name string
	Groups           []string
}

// Users are the demo's accounts: one engineer, one outsider.
var Users = []User{
	{Sub: "alice", Email: "alice@demo.ztproxy.dev", Name: "Alice Engineer", Groups: []string{"eng", "admins"}},
	{Sub: "bob", Email: "bob@demo.ztproxy.dev", Name: "Bob Contractor", Groups: []string{"contractors"}},
}

// Issuer is a development token issuer: OIDC discovery and a JWKS, and
// tokens minted on request for the demo users. Loopback only; NOT for
// production.
type Issuer struct {
	URL      string
	Audience string
	key      *ecdsa.PrivateKey
	srv      *http.Server
}

// StartIssuer listens on addr (a loopback address) and serves discovery
// and keys.
func StartIssuer(addr, audience string) (*Issuer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("demo issuer: refusing non-loopback address %q", addr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	is := &Issuer{URL: "http://" + ln.Addr().String(), Audience: audience, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/jwks", "authorization_endpoint": is.URL + "/authorize",
			"token_endpoint": is.URL + "/token", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "demo", Algorithm: "ES256", Use: "sig"}}})
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go is.srv.Serve(ln)
	return is, nil
}

// Close stops the issuer.
func (is *Issuer) Close() error { return is.srv.Close() }

// Token mints an access token for u valid for ttl.
func (is *Issuer) Token(u User, ttl time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "demo"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.Signed(signer).Claims(map[string]any{
		"iss": is.URL, "sub": u.Sub, "aud": is.Audience, "email": u.Email, "email_verified": true,
		"name": u.Name, "groups": u.Groups, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"amr": []string{"pwd"}, "auth_time": now.Unix(),
	}).Serialize()
}

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
