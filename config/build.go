package config

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/authz"
	"ztproxy/awscreds"
	"ztproxy/certs"
	"ztproxy/proxy"
)

// Runtime is a validated File turned into the typed Config of each
// component. Building it reads the files the config names (policies,
// CA bundles, keys) but starts nothing.
type Runtime struct {
	File *File
	// Proxy is the reloadable request pipeline. Its Bearer field is left
	// nil: the caller supplies a verifier (and keeps it across reloads so
	// its key cache survives).
	Proxy  proxy.Config
	Server proxy.ServerConfig
	// Certs configures the public listener's TLS; nil when the listener is
	// plaintext.
	Certs *certs.Config
	// Bearer configures bearer-token verification; IdPs is empty when no
	// identity provider is configured.
	Bearer authn.BearerConfig
	// AWS configures per-user AWS credentials; nil without aws.roles. The
	// caller adds the proxy's own credentials and the metric hooks.
	AWS *awscreds.Config
	// Browser configures browser sign-in; nil when no identity provider has
	// client credentials or no session secret is set. Its Store is left
	// for the caller.
	Browser *authn.BrowserConfig
	// SigningKey signs identity assertions; nil means generate one.
	SigningKey *ecdsa.PrivateKey
	// WatchFiles are the files whose change triggers a reload: the config
	// itself (added by the caller) and every policy file.
	WatchFiles []string
}

// CheckPolicies is the Options.CheckPolicies hook backed by the Cedar
// engine: it parses every file and reports each problem with file:line.
func CheckPolicies(paths []string, loc *time.Location) error {
	files, err := authz.LoadFiles(paths)
	if err != nil {
		return err
	}
	_, err = authz.New(authz.Config{Policies: files, Location: loc})
	return err
}

// DefaultOptions are the Options the ztproxy commands use.
func DefaultOptions() Options { return Options{CheckPolicies: CheckPolicies} }

// LoadRuntime loads, validates and builds the file at path.
func LoadRuntime(path string) (*Runtime, error) {
	return LoadRuntimeWith(path, DefaultOptions())
}

// LoadRuntimeWith is LoadRuntime with options (overrides).
func LoadRuntimeWith(path string, opts Options) (*Runtime, error) {
	f, err := Load(path, opts)
	if err != nil {
		return nil, err
	}
	return Build(f)
}

// Build converts a validated File. Problems found only now (a file that
// changed since validation) are returned joined.
func Build(f *File) (*Runtime, error) {
	rt := &Runtime{File: f, WatchFiles: append([]string(nil), f.PolicyFiles...)}
	var errs []error

	files, err := authz.LoadFiles(f.PolicyFiles)
	if err != nil {
		errs = append(errs, fmt.Errorf("policies: %w", err))
	}
	engine, err := authz.New(authz.Config{Policies: files, Location: f.Location})
	if err != nil {
		errs = append(errs, fmt.Errorf("policies: %w", err))
	}

	ext, _ := url.Parse(f.ExternalURL)
	rt.Proxy = proxy.Config{
		ExternalURL:           ext,
		TrustedProxies:        f.TrustedProxyPrefixes,
		Location:              f.Location,
		AssertionTTL:          f.Assertion.TTL,
		MaxBodyBytes:          f.Server.MaxBodyBytes,
		SessionCookieName:     f.Session.CookieName,
		AWSFederationEndpoint: f.AWS.FederationEndpoint,
	}
	if engine != nil {
		rt.Proxy.Authorizer = engine
	}
	routes := f.Routes
	if f.Mode == ModeSidecar && f.Sidecar != nil {
		// One implicit route to the local service, for any host.
		sc := DefaultRoute()
		sc.Name, sc.Host, sc.Upstream, sc.Auth = f.Sidecar.Name, "*", f.Sidecar.Upstream, string(proxy.AuthSidecar)
		routes = append([]Route{sc}, routes...)
	}
	for i, r := range routes {
		pr, err := buildRoute(r)
		pr.UpstreamTransport = proxy.UpstreamTransport(routeUpstreamTransport(f.Server.UpstreamTransport, r.UpstreamTransport))
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d]: %w", i, err))
			continue
		}
		rt.Proxy.Routes = append(rt.Proxy.Routes, pr)
	}
	rt.Server = proxy.ServerConfig{
		ReadHeaderTimeout: f.Server.ReadHeaderTimeout,
		ReadTimeout:       f.Server.ReadTimeout,
		WriteTimeout:      f.Server.WriteTimeout,
		IdleTimeout:       f.Server.IdleTimeout,
		MaxHeaderBytes:    f.Server.MaxHeaderBytes,
		MaxBodyBytes:      f.Server.MaxBodyBytes,
		ShutdownGrace:     f.Server.ShutdownGrace,
		Pprof:             f.Server.Pprof,
	}
	if !f.InsecurePlaintext {
		rt.Certs = &certs.Config{
			CertFile: f.TLS.CertFile, KeyFile: f.TLS.KeyFile,
			ClientCAFile: f.TLS.ClientCAFile, ClientAuth: certs.ClientAuth(f.TLS.ClientAuth),
		}
	}
	for _, idp := range f.IdPs {
		if len(idp.Audiences) == 0 {
			continue // browser-only IdP: no bearer tokens accepted from it
		}
		rt.Bearer.IdPs = append(rt.Bearer.IdPs, authn.IdPConfig{
			Name: idp.Name, Issuer: idp.Issuer, Audiences: idp.Audiences, JWKSURL: idp.JWKSURL,
			GroupsClaim: idp.GroupsClaim, TokenUse: idp.TokenUse, ClaimsToExpose: idp.Claims,
		})
	}
	rt.Browser = buildBrowser(f, ext)
	for _, idp := range f.IdPs {
		if idp.StepUp != nil {
			if rt.Proxy.StepUpHints == nil {
				rt.Proxy.StepUpHints = map[string]proxy.StepUpHint{}
			}
			rt.Proxy.StepUpHints[idp.Name] = proxy.StepUpHint{ACRValues: idp.StepUp.ACRValues, MaxAge: idp.StepUp.MaxAge}
		}
	}
	if len(f.Assertion.TrustedJWKS) > 0 {
		v, err := authn.NewAssertionVerifier(f.Assertion.TrustedJWKS, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("assertion.trusted_jwks: %w", err))
		} else {
			rt.Proxy.Assertions = v
		}
	}
	rt.AWS = f.awsConfig()
	if f.Assertion.SigningKeyFile != "" {
		key, err := LoadSigningKey(f.Assertion.SigningKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("assertion.signing_key_file: %w", err))
		}
		rt.SigningKey = key
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

func buildRoute(r Route) (proxy.RouteConfig, error) {
	up, err := url.Parse(r.Upstream)
	if err != nil {
		return proxy.RouteConfig{}, fmt.Errorf("upstream: %w", err)
	}
	pr := proxy.RouteConfig{
		Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Upstream: up,
		UpstreamServerName: r.UpstreamServerName, Auth: proxy.AuthMode(r.Auth), IdP: r.IdP,
		PassIdentityHeaders: r.PassIdentityHeaders, PreserveHost: r.PreserveHost,
		StripPrefix: r.StripPrefix, Timeout: r.Timeout, WebSocket: r.WebSocket,
	}
	if r.AWS != nil {
		pr.AWS = &proxy.RouteAWS{Role: r.AWS.Role}
		if s := r.AWS.Sign; s != nil {
			pr.AWS.SignService, pr.AWS.SignRegion, pr.AWS.UnsignedPayload = s.Service, s.Region, s.UnsignedPayload
		}
	}
	if r.UpstreamCAFile != "" {
		pool, err := certs.LoadCertPool(r.UpstreamCAFile)
		if err != nil {
			return pr, fmt.Errorf("upstream_ca_file: %w", err)
		}
		pr.UpstreamCAs = pool
	}
	return pr, nil
}

// buildBrowser converts the sign-in settings, or returns nil when sign-in
// is not configured.
func buildBrowser(f *File, ext *url.URL) *authn.BrowserConfig {
	if len(f.Session.SecretKeys) == 0 {
		return nil
	}
	bc := &authn.BrowserConfig{
		ExternalURL: ext,
		Cookies: authn.SessionCodecConfig{
			CookieName: f.Session.CookieName, Domain: f.Session.CookieDomain, Secrets: f.Session.SecretKeys,
			Insecure: ext.Scheme == "http",
		},
		Lifetime: f.Session.Lifetime, IdleTimeout: f.Session.IdleTimeout,
		ReturnHostAllowed: returnHostMatcher(f, ext),
	}
	for _, idp := range f.IdPs {
		if idp.ClientID == "" || idp.ClientSecret == "" {
			continue
		}
		bi := authn.BrowserIdPConfig{
			Name: idp.Name, Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			Scopes: idp.Scopes, GroupsClaim: idp.GroupsClaim, ClaimsToExpose: idp.Claims,
			ExtraAuthParams: idp.ExtraAuthParams, LogoutURL: idp.LogoutURL,
		}
		if idp.StepUp != nil {
			bi.StepUpACR, bi.StepUpMaxAge = idp.StepUp.ACRValues, idp.StepUp.MaxAge
		}
		bc.IdPs = append(bc.IdPs, bi)
	}
	if len(bc.IdPs) == 0 {
		return nil
	}
	if rpid := f.WebAuthnRPID(); rpid != "" {
		// The caller sets Store.
		bc.WebAuthn = &authn.WebAuthnConfig{
			RPID: rpid, RPDisplayName: f.WebAuthn.RPName, EnrollMaxAge: f.WebAuthn.EnrollMaxAge,
			RPOrigins: []string{ext.Scheme + "://" + ext.Host},
		}
	}
	return bc
}

// returnHostMatcher allows sign-in to return to the external host and to
// any route host (a wildcard route allows its subdomains).
func returnHostMatcher(f *File, ext *url.URL) func(string) bool {
	exact := map[string]bool{strings.ToLower(ext.Host): true, strings.ToLower(ext.Hostname()): true}
	var suffixes []string
	for _, r := range f.Routes {
		if strings.HasPrefix(r.Host, "*.") {
			suffixes = append(suffixes, r.Host[1:])
			continue
		}
		exact[r.Host] = true
	}
	return func(host string) bool {
		host = strings.ToLower(host)
		if exact[host] {
			return true
		}
		for _, s := range suffixes {
			if strings.HasSuffix(hostOnly(host), s) {
				return true
			}
		}
		return false
	}
}
