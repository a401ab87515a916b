package decide

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"ztproxy/idheaders"
	"ztproxy/upstream"
)

// AuthMode says how a route authenticates its callers.
type AuthMode string

// Route authentication modes.
const (
	AuthBearer  AuthMode = "bearer"
	AuthMTLS    AuthMode = "mtls"
	AuthBrowser AuthMode = "browser"
	AuthPublic  AuthMode = "public"
	// AuthSidecar accepts, in order: a front proxy's X-Ztp-Assertion for
	// this route, a bearer JWT, or a verified client certificate.
	AuthSidecar AuthMode = "sidecar"
)

// RouteConfig is one protected upstream.
type RouteConfig struct {
	Name string
	// Host is the canonical host ("app.example.com", optionally with a
	// non-default port, or "*.example.com").
	Host string
	// PathPrefix is a canonical path prefix; "/" matches everything.
	PathPrefix string
	Upstream   *url.URL
	// UpstreamCAs, when non-nil, replaces the system roots for an https
	// upstream.
	UpstreamCAs        *x509.CertPool
	UpstreamServerName string
	Auth               AuthMode
	// IdP names the identity provider for bearer and browser routes
	// ("" = any configured issuer for bearer routes).
	IdP                 string
	PassIdentityHeaders bool
	PreserveHost        bool
	StripPrefix         bool
	Timeout             time.Duration
	WebSocket           bool
	// AllowPathParameters accepts ";" path parameters (matrix parameters,
	// ";jsessionid="): the route and policy match the path without them
	// and the upstream receives them. Without it a path with ";" is
	// refused (400), since servlet containers strip parameters and read
	// "..;" as "..".
	AllowPathParameters bool
	// AllowedOrigins are origins besides the route's own whose pages may
	// open WebSockets with the user's session cookie or client
	// certificate ("https://app.example.com", exact; see CanonicalOrigin).
	AllowedOrigins []string
	// AWS, when set, mints the caller's AWS credentials for the upstream.
	AWS *RouteAWS
	// UpstreamTransport picks the client for an http:// upstream; ""
	// means upstream.Lean. The engine only carries it to the reverse
	// proxy.
	UpstreamTransport upstream.Mode
	// CORSPreflight forwards unauthenticated CORS preflights (OPTIONS
	// with Origin and Access-Control-Request-Method); other requests,
	// plain OPTIONS included, authenticate as usual.
	CORSPreflight bool
	// RequestHeaders and ResponseHeaders are the route's header rules;
	// nil when it has none.
	RequestHeaders, ResponseHeaders *idheaders.Rules
	// Rewrite, when set, changes the forwarded path (never the path
	// policy sees).
	Rewrite *PathRewrite
	// HostRewrite, when set, is the Host header sent upstream.
	HostRewrite string
	// MaxBodyBytes bounds this route's request bodies; 0 means
	// Config.MaxBodyBytes.
	MaxBodyBytes int64
	// ConnectTimeout, ResponseHeaderTimeout and IdleTimeout tune the
	// upstream transport; 0 means its defaults (ResponseHeaderTimeout:
	// Timeout).
	ConnectTimeout, ResponseHeaderTimeout, IdleTimeout time.Duration
	// RateLimit, when set, limits each principal's requests.
	RateLimit *RateLimit
	// Upstreams, when there are two or more, are balanced by LBPolicy;
	// Upstream is then the first of them (its scheme and path are
	// everyone's).
	Upstreams []*url.URL
	LBPolicy  upstream.LBPolicy
	// HealthCheck and Outlier, when set, check Upstreams actively and
	// eject failing ones passively.
	HealthCheck *upstream.HealthCheck
	Outlier     *upstream.Outlier
	// GRPC marks a gRPC route: gRPC calls are streams the route's
	// whole-exchange Timeout does not cut (ResponseHeaderTimeout still
	// bounds the wait for the response header).
	GRPC bool
}

// Config is the reloadable configuration every front door decides with:
// the route table, the components that authenticate, score and authorize,
// and the few settings front doors read (assertion lifetime, body limit,
// session cookie). New compiles it into an immutable Engine; a reload
// builds a new Engine and the listener swaps it in atomically.
type Config struct {
	// ExternalURL is the proxy's own public origin; it is the assertion
	// issuer and the base of /.ztp/* links.
	ExternalURL    *url.URL
	TrustedProxies []netip.Prefix
	Location       *time.Location
	Routes         []RouteConfig
	// Authorizer decides every request.
	Authorizer Authorizer
	// Bearer verifies bearer JWTs; required when a route uses bearer auth.
	Bearer BearerVerifier
	// Browser signs users in; required when a route uses browser auth.
	Browser BrowserAuth
	// AWS mints per-user AWS credentials; required when a route names an
	// AWS role.
	AWS AWSMinter
	// AWSFederationEndpoint overrides the AWS console federation endpoint.
	AWSFederationEndpoint string
	// Assertions verifies front proxies' identity assertions (sidecar
	// mode).
	Assertions AssertionVerifier
	// StepUpHints are the IdPs' step-up settings by IdP name, for RFC 9470
	// challenges to bearer callers.
	StepUpHints map[string]StepUpHint
	// Risk scores requests; nil means the neutral score for everyone.
	Risk RiskScorer
	// AssertionTTL is the lifetime of X-Ztp-Assertion JWTs.
	AssertionTTL time.Duration
	// MaxBodyBytes bounds proxied request bodies; 0 means unlimited.
	MaxBodyBytes int64
	// SessionCookieName is the browser session cookie; it is removed from
	// forwarded requests.
	SessionCookieName string
	// Devices adds the device inventory's facts to a presented client
	// certificate; nil without devices configured.
	Devices DeviceInventory
	// Guard refuses principals flagged compromised (issue 17); nil
	// without a store.
	Guard PrincipalGuard
	// Signals receives pushed security events; nil without transmitters.
	Signals SignalReceiver
	// Admin is the operator API; nil unless admin_api is configured.
	Admin AdminAPI
}

// CheckAndSetDefaults validates the config and fills defaults. It has no
// side effects beyond the receiver and reports every problem at once.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.ExternalURL == nil || c.ExternalURL.Host == "" {
		errs = append(errs, errors.New("external_url: required"))
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.AssertionTTL <= 0 {
		c.AssertionTTL = time.Minute
	}
	if c.Authorizer == nil {
		errs = append(errs, errors.New("policies: an authorizer is required"))
	}
	names := make(map[string]bool, len(c.Routes))
	for i := range c.Routes {
		r := &c.Routes[i]
		if names[r.Name] {
			errs = append(errs, fmt.Errorf("routes[%d].name: duplicate %q", i, r.Name))
		}
		names[r.Name] = true
		if r.Upstream == nil || r.Upstream.Host == "" {
			errs = append(errs, fmt.Errorf("routes[%d].upstream: required", i))
		}
		if r.PathPrefix == "" {
			r.PathPrefix = "/"
		}
		if r.Timeout <= 0 {
			r.Timeout = 30 * time.Second
		}
		if r.RateLimit != nil {
			if err := r.RateLimit.Check(); err != nil {
				errs = append(errs, fmt.Errorf("routes[%d].rate_limit: %w", i, err))
			}
		}
		if r.CORSPreflight && r.AWS != nil {
			errs = append(errs, fmt.Errorf("routes[%d].cors_preflight: not with aws (a preflight has no user to mint credentials for)", i))
		}
		if r.AWS != nil && c.AWS == nil {
			errs = append(errs, fmt.Errorf("routes[%d].aws: no AWS roles configured", i))
		}
		switch r.Auth {
		case AuthBearer:
			if c.Bearer == nil {
				errs = append(errs, fmt.Errorf("routes[%d].auth: bearer needs an identity provider", i))
			}
		case AuthBrowser:
			if c.Browser == nil {
				errs = append(errs, fmt.Errorf("routes[%d].auth: browser needs sign-in configured (idps with client_id, session secrets)", i))
			}
		case AuthSidecar:
			if c.Assertions == nil && c.Bearer == nil {
				errs = append(errs, fmt.Errorf("routes[%d].auth: sidecar needs trusted JWKS or an identity provider", i))
			}
		case AuthMTLS, AuthPublic:
		default:
			errs = append(errs, fmt.Errorf("routes[%d].auth: unknown mode %q", i, r.Auth))
		}
	}
	return errors.Join(errs...)
}
