package authn

import (
	"context"
	"errors"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
)

// IdPProbe says what an online check of one IdP must find: what serve
// fetches from it, for the uses it is configured for.
type IdPProbe struct {
	Name, Issuer string
	// JWKSURL, when set, replaces discovery for the keys.
	JWKSURL string
	// SignIn: browser sign-in needs the authorization and token endpoints.
	SignIn bool
	// Userinfo: bearer enrichment needs a userinfo endpoint, UserinfoURL
	// or the discovered one.
	Userinfo    bool
	UserinfoURL string
}

// IdPProbeResult is what ProbeIdP found: the endpoints it will use and
// every problem, each a sentence for an operator.
type IdPProbeResult struct {
	Discovery bool // a discovery document was fetched and checked
	JWKSURL   string
	Keys      int // usable signing keys in the JWKS
	// AuthorizationEndpoint, TokenEndpoint and UserinfoEndpoint are the
	// endpoints in use ("" when not used or missing).
	AuthorizationEndpoint, TokenEndpoint, UserinfoEndpoint string
	Problems                                               []string
}

// ProbeIdP fetches an IdP's discovery document (unless only a JWKS URL is
// needed) and its JWKS through the hardened IdP client, as serve would on
// first use, and checks them with the rules serve applies. It never
// returns an error: every failure is one of the result's Problems.
func ProbeIdP(ctx context.Context, client *http.Client, p IdPProbe) IdPProbeResult {
	client = NewIdPHTTPClient(client)
	var res IdPProbeResult
	res.JWKSURL = p.JWKSURL
	if p.JWKSURL == "" || p.SignIn || (p.Userinfo && p.UserinfoURL == "") {
		res.Discovery = true
		meta, problems := probeDiscovery(ctx, client, p)
		res.Problems = append(res.Problems, problems...)
		if meta != nil {
			if res.JWKSURL == "" {
				res.JWKSURL = meta.JWKSURL
			}
			if p.SignIn {
				res.AuthorizationEndpoint, res.TokenEndpoint = meta.Authorization, meta.Token
			}
			if p.Userinfo {
				res.UserinfoEndpoint = meta.UserInfo
			}
		}
	}
	if p.Userinfo && p.UserinfoURL != "" {
		res.UserinfoEndpoint = p.UserinfoURL
	}
	if p.Userinfo && res.UserinfoEndpoint == "" && res.Discovery && len(res.Problems) == 0 {
		res.Problems = append(res.Problems, "userinfo is configured, but the discovery document has no userinfo_endpoint: set userinfo.url")
	}
	if res.JWKSURL != "" {
		keys, err := probeJWKS(ctx, client, p.Name, res.JWKSURL)
		if err != nil {
			res.Problems = append(res.Problems, "the JWKS cannot be used: "+err.Error())
		}
		res.Keys = keys
	}
	return res
}

// probeDiscovery fetches and checks the discovery document.
func probeDiscovery(ctx context.Context, client *http.Client, p IdPProbe) (*providerMetadata, []string) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err == nil {
		_, err = discoveredEndpoints(provider, p.SignIn)
	}
	var mis *IdPMisconfiguredError
	switch err = misconfiguredIssuer(err); {
	case errors.As(err, &mis):
		return nil, mis.Problems
	case err != nil:
		return nil, []string{"the discovery document could not be fetched: " + err.Error()}
	}
	var meta providerMetadata
	_ = provider.Claims(&meta) // discoveredEndpoints decoded it already
	return &meta, nil
}

// probeJWKS fetches the JWKS once and counts its usable keys.
func probeJWKS(ctx context.Context, client *http.Client, name, url string) (int, error) {
	ks, err := NewKeySet(KeySetConfig{Name: name, URL: url, HTTPClient: client})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	keys, _, err := ks.fetch(ctx)
	return len(keys), err
}
