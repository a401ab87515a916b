package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSKeys bounds the keys taken from one JWKS; real IdPs publish a
// handful, and every key is a candidate for tokens without a kid.
const maxJWKSKeys = 100

// minRSAKeyBits is the smallest RSA key trusted for signatures.
const minRSAKeyBits = 2048

// fetch gets and parses the JWKS and returns its usable keys and how long
// they may be used.
func (k *KeySet) fetch(ctx context.Context) ([]*trustedKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("JWKS %s: HTTP status %d", k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", k.url, err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", k.url, err)
	}
	return keys, jwksTTL(resp.Header, k.refresh), nil
}

// parseJWKS reads a JWK set document. Keys that cannot verify signatures
// (encryption keys, symmetric keys, private keys, short RSA keys, unknown
// types) are skipped; a document with no usable key at all is an error, so
// a broken response never withdraws every key.
func parseJWKS(body []byte) ([]*trustedKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%d keys, more than the %d accepted", len(doc.Keys), maxJWKSKeys)
	}
	jwks := make([]jose.JSONWebKey, 0, len(doc.Keys))
	unparsable := 0
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			unparsable++
			continue
		}
		jwks = append(jwks, jwk)
	}
	keys, skipped := usableKeys(jwks)
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable signing keys (%d unparsable; %s)", unparsable, skipped)
	}
	return keys, nil
}

// usableKeys keeps the public signature keys of jwks and says why others
// were skipped.
func usableKeys(jwks []jose.JSONWebKey) ([]*trustedKey, string) {
	var keys []*trustedKey
	var skipped []string
	for i := range jwks {
		jwk := &jwks[i]
		if why := unusableKey(jwk); why != "" {
			skipped = append(skipped, fmt.Sprintf("kid %q: %s", truncateKID(jwk.KeyID), why))
			continue
		}
		thumb, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("kid %q: %v", truncateKID(jwk.KeyID), err))
			continue
		}
		keys = append(keys, &trustedKey{
			kid: jwk.KeyID, alg: jwk.Algorithm, public: jwk.Key,
			thumbprint: base64.RawURLEncoding.EncodeToString(thumb),
		})
	}
	if len(skipped) == 0 {
		return keys, "none skipped"
	}
	return keys, "skipped " + strings.Join(skipped, "; ")
}

// unusableKey says why jwk cannot verify IdP signatures, or "".
func unusableKey(jwk *jose.JSONWebKey) string {
	if jwk.Use != "" && jwk.Use != "sig" {
		return "use is not sig"
	}
	if !jwk.IsPublic() {
		// A published private key means anyone can mint tokens.
		return "private key material published; refusing it"
	}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSAKeyBits {
			return fmt.Sprintf("RSA key shorter than %d bits", minRSAKeyBits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Sprintf("key type %T cannot verify IdP signatures", jwk.Key)
	}
	return ""
}

// truncateKID keeps an IdP-supplied kid short in messages.
func truncateKID(kid string) string {
	if len(kid) > 64 {
		return kid[:64] + "…"
	}
	return kid
}

// jwksTTL is how long a fetched set may be used: the response's
// Cache-Control max-age (less its Age) when that is shorter than
// refresh.Interval, but never less than refresh.MinRefetchInterval.
func jwksTTL(h http.Header, refresh KeyRefresh) time.Duration {
	ttl := refresh.Interval
	if maxAge, ok := parseMaxAge(h.Values("Cache-Control")); ok {
		if age, err := strconv.ParseUint(strings.TrimSpace(h.Get("Age")), 10, 31); err == nil {
			maxAge -= time.Duration(age) * time.Second
		}
		ttl = min(ttl, maxAge)
	}
	return max(ttl, refresh.MinRefetchInterval)
}

// parseMaxAge reads max-age from Cache-Control values; no-store and
// no-cache count as max-age=0. ok is false when none is given or a
// max-age is malformed.
func parseMaxAge(values []string) (d time.Duration, ok bool) {
	for _, v := range values {
		for _, directive := range strings.Split(v, ",") {
			name, arg, hasArg := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(arg, `"`), 10, 63)
				if !hasArg || err != nil {
					return 0, false
				}
				return time.Duration(min(n, uint64(MaxJWKSInterval/time.Second))) * time.Second, true
			}
		}
	}
	return 0, false
}
