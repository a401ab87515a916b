package config

import (
	"crypto/ecdsa"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/authz"
	"ztproxy/awscreds"
	"ztproxy/certs"
	"ztproxy/decide"
	"ztproxy/devices"
	"ztproxy/proxy"
	"ztproxy/upstream"
)

// Runtime is a validated File turned into the typed Config of each
// component. Building it reads the files the config names (policies,
// CA bundles, keys) but starts nothing.
type Runtime struct {
	File *File
	// Proxy is the reloadable configuration of every front door (the
	// decision engine's Config). Its Bearer field is left nil: the caller
	// supplies a verifier (and keeps it across reloads so its key cache
	// survives).
	Proxy  decide.Config
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
	// Assertion configures the verification of front proxies' assertions
	// (sidecar mode); nil without assertion.trusted_jwks. Build also sets
	// Proxy.Assertions from it.
	Assertion *authn.AssertionConfig
	// Devices configures device trust; nil when devices.enabled is off.
	// The caller sets its Store, Logger and hooks.
	Devices *devices.Config
	// SigningKey signs identity assertions; nil means generate one.
	SigningKey *ecdsa.PrivateKey
	// PublishedKeys are published next to SigningKey in /.ztp/jwks.json:
	// the next and previous keys of a rotation (assertion.*_signing_key_file).
	PublishedKeys []*ecdsa.PublicKey
	// AssertionCacheSize bounds the signer's assertion cache
	// (caches.assertions).
	AssertionCacheSize int
	// WatchFiles are the files whose change triggers a reload: the config
	// itself (added by the caller) and every policy file.
	WatchFiles []string

	// lines knows the line of every YAML path of the file, for problems
	// found after Build (see NewReport); nil for a Runtime built by Build.
	lines *collector
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

// LoadRuntimeWith is LoadRuntime with options (overrides). It is the
// first half of every start-up, check-config and reload: every problem
// it finds is an *Errors, with YAML paths and lines, in file order.
func LoadRuntimeWith(path string, opts Options) (*Runtime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{Problems: []Problem{{Path: PathFile, Message: err.Error()}}}
	}
	c := newCollector()
	f := parse(data, filepath.Dir(path), opts, c)
	if f == nil {
		return nil, c.err()
	}
	rt := f.build(c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return rt, nil
}

// Build converts a validated File. Problems found only now (a file that
// changed since validation) are returned as an *Errors.
func Build(f *File) (*Runtime, error) {
	c := newCollector()
	rt := f.build(c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return rt, nil
}

// build converts f, reporting problems to c, and keeps c's line map so
// that problems found later (NewReport) have lines too.
func (f *File) build(c *collector) *Runtime {
	rt := &Runtime{File: f, WatchFiles: append([]string(nil), f.PolicyFiles...), lines: c}

	files, err := authz.LoadFiles(f.PolicyFiles)
	if err != nil {
		addErr(c, "policies", err)
	}
	engine, err := authz.New(authz.Config{Policies: files, Location: f.Location})
	if err != nil {
		addErr(c, "policies", err)
	}

	ext, _ := url.Parse(f.ExternalURL)
	rt.Proxy = decide.Config{
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
	f.buildRoutes(c, rt)
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
		f.buildACME(c, rt)
	}
	f.buildDevices(c, rt)
	f.buildIdPs(rt)
	rt.Browser = buildBrowser(f, ext)
	if err := buildAssertion(f, rt); err != nil {
		addErr(c, "assertion.trusted_jwks", err)
	}
	rt.AWS = f.awsConfig()
	rt.Bearer.CacheSize, rt.AssertionCacheSize = f.Caches.VerifiedTokens, f.Caches.Assertions
	if f.Assertion.SigningKeyFile != "" {
		key, err := LoadSigningKey(f.Assertion.SigningKeyFile)
		if err != nil {
			addErr(c, "assertion.signing_key_file", err)
		}
		rt.SigningKey = key
	}
	rt.PublishedKeys = buildPublishedKeys(f, c)
	return rt
}

// buildAssertion sets rt.Assertion and rt.Proxy.Assertions when the sidecar
// trusts front proxies' keys. The verifier is built here so that
// check-config reports unreadable JWKS files; the caller rebuilds it with
// its logger and metric hooks.
func buildAssertion(f *File, rt *Runtime) error {
	a := f.Assertion
	if len(a.TrustedJWKS) == 0 {
		return nil
	}
	rt.Assertion = &authn.AssertionConfig{
		Sources: a.TrustedJWKS,
		KeyRefresh: authn.KeyRefresh{
			Interval: a.JWKSRefreshInterval, MinRefetchInterval: a.JWKSMinRefetchInterval, MaxStale: a.JWKSMaxStale,
		},
	}
	v, err := authn.NewAssertionVerifier(*rt.Assertion)
	if err != nil {
		return err
	}
	rt.Proxy.Assertions = v
	return nil
}

// keyRefresh converts the IdP's key-refresh settings.
func (i *IdP) keyRefresh() authn.KeyRefresh {
	return authn.KeyRefresh{Interval: i.JWKSRefreshInterval, MinRefetchInterval: i.JWKSMinRefetchInterval, MaxStale: i.JWKSMaxStale}
}

// buildIdPs converts the bearer IdPs and the step-up hints.
func (f *File) buildIdPs(rt *Runtime) {
	for _, idp := range f.IdPs {
		if idp.StepUp != nil {
			if rt.Proxy.StepUpHints == nil {
				rt.Proxy.StepUpHints = map[string]decide.StepUpHint{}
			}
			rt.Proxy.StepUpHints[idp.Name] = decide.StepUpHint{ACRValues: idp.StepUp.ACRValues, MaxAge: idp.StepUp.MaxAge}
		}
		if len(idp.Audiences) == 0 {
			continue // browser-only IdP: no bearer tokens accepted from it
		}
		ic := authn.IdPConfig{
			Name: idp.Name, Issuer: idp.Issuer, Audiences: idp.Audiences, JWKSURL: idp.JWKSURL,
			GroupsClaim: idp.GroupsClaim, TokenUse: idp.TokenUse, ClaimsToExpose: idp.Claims,
			KeyRefresh: idp.keyRefresh(),
		}
		if u := idp.Userinfo; u != nil {
			ic.Userinfo = &authn.UserinfoConfig{URL: u.URL, CacheTTL: u.CacheTTL, CacheSize: u.CacheSize, Timeout: u.Timeout, OnFailure: u.OnFailure}
		}
		rt.Bearer.IdPs = append(rt.Bearer.IdPs, ic)
	}
}

// buildRoutes converts the routes, with the sidecar's implicit route
// first in sidecar mode.
func (f *File) buildRoutes(c *collector, rt *Runtime) {
	routes, paths := f.Routes, make([]string, len(f.Routes))
	for i := range routes {
		paths[i] = indexPath("routes", i)
	}
	if f.Mode == ModeSidecar && f.Sidecar != nil {
		// One implicit route to the local service, for any host.
		sc := DefaultRoute()
		sc.Name, sc.Host, sc.Upstream, sc.Auth = f.Sidecar.Name, "*", f.Sidecar.Upstream, string(decide.AuthSidecar)
		sc.AllowPathParameters = f.Sidecar.AllowPathParameters
		routes = append([]Route{sc}, routes...)
		paths = append([]string{"sidecar"}, paths...)
	}
	for i, r := range routes {
		pr, field, err := buildRoute(r)
		pr.UpstreamTransport = upstream.Mode(routeUpstreamTransport(f.Server.UpstreamTransport, r.UpstreamTransport))
		if err != nil {
			addErr(c, paths[i]+"."+field, err)
			continue
		}
		rt.Proxy.Routes = append(rt.Proxy.Routes, pr)
	}
}

// buildRoute converts one route; on failure it names the failing field.
func buildRoute(r Route) (decide.RouteConfig, string, error) {
	up, err := url.Parse(r.Upstream)
	if err != nil {
		return decide.RouteConfig{}, "upstream", err
	}
	pr := decide.RouteConfig{
		Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Upstream: up,
		UpstreamServerName: r.UpstreamServerName, Auth: decide.AuthMode(r.Auth), IdP: r.IdP,
		PassIdentityHeaders: r.PassIdentityHeaders, PreserveHost: r.PreserveHost,
		StripPrefix: r.StripPrefix, Timeout: r.Timeout, WebSocket: r.WebSocket,
		AllowPathParameters: r.AllowPathParameters, AllowedOrigins: r.AllowedOrigins,
	}
	if r.AWS != nil {
		pr.AWS = &decide.RouteAWS{Role: r.AWS.Role}
		if s := r.AWS.Sign; s != nil {
			pr.AWS.SignService, pr.AWS.SignRegion, pr.AWS.UnsignedPayload = s.Service, s.Region, s.UnsignedPayload
			pr.AWS.MaxBufferedBody = s.MaxBufferedBody
		}
	}
	if field, err := buildRouteOptions(r, &pr); err != nil {
		return pr, field, err
	}
	if r.UpstreamCAFile != "" {
		pool, err := certs.LoadCertPool(r.UpstreamCAFile)
		if err != nil {
			return pr, "upstream_ca_file", err
		}
		pr.UpstreamCAs = pool
	}
	return pr, "", nil
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
		if idp.ClientID == "" || idp.ResolvedClientSecret == "" {
			continue
		}
		bi := authn.BrowserIdPConfig{
			Name: idp.Name, Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecret: idp.ResolvedClientSecret,
			Scopes: idp.Scopes, GroupsClaim: idp.GroupsClaim, ClaimsToExpose: idp.Claims,
			ExtraAuthParams: idp.ExtraAuthParams, LogoutURL: idp.LogoutURL, KeyRefresh: idp.keyRefresh(),
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
// any route host (a wildcard route allows its subdomains), by name: authn
// accepts them only on the external origin's scheme and port, so a route
// host pinned to another port adds nothing (issue 12.8).
func returnHostMatcher(f *File, ext *url.URL) func(string) bool {
	extPort := ext.Port()
	if extPort == "" {
		extPort = map[string]string{"https": "443", "http": "80"}[ext.Scheme]
	}
	exact := map[string]bool{strings.ToLower(ext.Hostname()): true}
	var suffixes []string
	for _, r := range f.Routes {
		name, port := splitRouteHost(strings.ToLower(r.Host))
		if port != "" && port != extPort {
			continue
		}
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			suffixes = append(suffixes, "."+rest)
			continue
		}
		exact[name] = true
	}
	return func(host string) bool {
		host = strings.ToLower(host)
		if exact[host] {
			return true
		}
		for _, s := range suffixes {
			if strings.HasSuffix(host, s) {
				return true
			}
		}
		return false
	}
}

// splitRouteHost splits a canonical route host into its name (IPv6
// without brackets) and port ("" when it has none).
func splitRouteHost(host string) (name, port string) {
	if h, p, err := net.SplitHostPort(host); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ""
}
