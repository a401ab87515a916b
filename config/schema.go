// Package config is ztproxy's one configuration file: the YAML schema,
// ${ENV} expansion, a strict decoder that rejects unknown keys, and a
// validation pass that reports every problem at once with its YAML path
// ("routes[2].upstream: must be an absolute http(s) URL").
//
// The package only describes and checks the file. Turning a File into the
// Config of each component is done by the callers of Load, so that every
// package keeps its own typed Config.
package config

import (
	"net/netip"
	"time"

	"ztproxy/authn"
	"ztproxy/proxy"
	"ztproxy/riskengine"
)

// The modes ztproxy runs in.
const (
	// ModeProxy is the front door: many routes, each to its own upstream.
	ModeProxy = "proxy"
	// ModeSidecar runs next to one service and protects only it; the
	// sidecar block names the upstream.
	ModeSidecar = "sidecar"
)

// The ways a route authenticates its callers.
const (
	AuthBearer  = "bearer"
	AuthMTLS    = "mtls"
	AuthBrowser = "browser"
	AuthPublic  = "public"
)

// The client certificate modes of the public listener.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// File is the whole configuration file. Fields tagged yaml:"-" are not read
// from YAML; Validate fills them in.
type File struct {
	// Mode is "proxy" (the default) or "sidecar".
	Mode string `yaml:"mode"`
	// Listen is the host:port of the public listener.
	Listen string `yaml:"listen"`
	// AdminListen is the host:port of the admin listener (metrics, health,
	// pprof); it must not be the public one.
	AdminListen string `yaml:"admin_listen"`
	// ExtAuthzListen, when set, serves Envoy's ext_authz gRPC API there
	// (loopback or a trusted network only).
	ExtAuthzListen string `yaml:"ext_authz_listen"`
	// ExternalURL is the https origin users reach the proxy at; login
	// callbacks and assertion issuers derive from it. Validate strips a
	// trailing slash.
	ExternalURL string `yaml:"external_url"`
	// TLS configures the public listener's certificates.
	TLS TLS `yaml:"tls"`
	// InsecurePlaintext serves the public listener without TLS, for use
	// behind a load balancer that terminates TLS, or in tests. It MUST NOT be
	// used when clients can reach the listener directly: session cookies and
	// tokens would cross the network in clear text.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// TrustedProxies are the CIDRs of load balancers whose
	// X-Forwarded-For entries are believed. Bare IPs are accepted.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Timezone is the IANA zone policy time attributes are computed in.
	Timezone string `yaml:"timezone"`
	// Policies are Cedar files or glob patterns, relative to the file's
	// directory unless absolute.
	Policies []string `yaml:"policies"`
	// IdPs are the identity providers tokens and logins come from.
	IdPs []IdP `yaml:"idps"`
	// Session configures the browser session cookie.
	Session Session `yaml:"session"`
	// WebAuthn configures proxy-verified security keys and passkeys for
	// @step_up("webauthn").
	WebAuthn WebAuthn `yaml:"webauthn"`
	// Assertion configures the signed identity JWT sent upstream.
	Assertion Assertion `yaml:"assertion"`
	// Server holds the HTTP server limits of the public listener.
	Server Server `yaml:"server"`
	// Audit says where audit records go.
	Audit Audit `yaml:"audit"`
	// Log configures the operational log.
	Log Log `yaml:"log"`
	// Tracing configures OpenTelemetry tracing (off by default).
	Tracing Tracing `yaml:"tracing"`
	// Routes map host and path prefix to an upstream.
	Routes []Route `yaml:"routes"`
	// Sidecar names the protected service in sidecar mode; nil when the
	// block is absent.
	Sidecar *Sidecar `yaml:"sidecar"`
	// Store is where state shared by replicas lives.
	Store Store `yaml:"store"`
	// Risk configures the behavioral risk engine.
	Risk Risk `yaml:"risk"`
	// Caches bounds the per-token caches by count.
	Caches Caches `yaml:"caches"`
	// AWS configures short-lived AWS credentials per user.
	AWS AWS `yaml:"aws"`
	// Devices configures device trust: the device CA, enrolment and the
	// device inventory.
	Devices Devices `yaml:"devices"`
	// SecurityEvents configures the Shared Signals (CAEP/RISC) receiver.
	SecurityEvents SecurityEvents `yaml:"security_events"`
	// AdminAPI configures the authenticated operator API.
	AdminAPI AdminAPI `yaml:"admin_api"`

	// BaseDir is the absolute directory relative file names were resolved
	// against: the directory of the loaded file, or Parse's baseDir.
	BaseDir string `yaml:"-"`
	// Location is the loaded Timezone.
	Location *time.Location `yaml:"-"`
	// PolicyFiles are the Policies with globs expanded: absolute, sorted
	// and without duplicates.
	PolicyFiles []string `yaml:"-"`
	// TrustedProxyPrefixes are the parsed TrustedProxies; a bare IP becomes
	// a /32 or /128.
	TrustedProxyPrefixes []netip.Prefix `yaml:"-"`
	// Warnings are problems that do not stop ztproxy, such as a secret
	// file other users can read. Validate fills them in.
	Warnings []Problem `yaml:"-"`
}

// TLS configures the certificates of the public listener. File names are
// made absolute by Validate.
type TLS struct {
	// CertFile is the PEM server certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is the PEM bundle client certificates are verified
	// against; required unless ClientAuth is "none".
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is "none" (the default), "request" or "require".
	ClientAuth string `yaml:"client_auth"`
	// ACME, when set, obtains the server certificate with ACME instead of
	// CertFile and KeyFile (config/acme.go).
	ACME *ACME `yaml:"acme"`
}

// IdP is one OpenID Connect identity provider.
type IdP struct {
	// Name identifies the IdP in routes and in principals; [a-z0-9-]+.
	Name string `yaml:"name"`
	// Issuer is the exact iss value of the IdP's tokens.
	Issuer string `yaml:"issuer"`
	// Audiences are the aud values accepted on bearer tokens.
	Audiences []string `yaml:"audiences"`
	// JWKSURL, when set, replaces OIDC discovery for the signing keys.
	JWKSURL string `yaml:"jwks_url"`
	// GroupsClaim names the claim holding group membership.
	GroupsClaim string `yaml:"groups_claim"`
	// TokenUse, when "id" or "access", requires that token_use claim value.
	TokenUse string `yaml:"token_use"`
	// Claims names extra claims exposed to policy.
	Claims []string `yaml:"claims"`
	// ClientID is the OAuth client for browser sign-in.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the OAuth client secret for browser sign-in.
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile names a file holding the client secret instead
	// (a mounted Kubernetes or ECS secret); at most one of the two is set.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes are requested at browser sign-in; they must include openid.
	Scopes []string `yaml:"scopes"`
	// ExtraAuthParams are added to the authorization request.
	ExtraAuthParams map[string]string `yaml:"extra_auth_params"`
	// LogoutURL is where the browser is sent to end the IdP session.
	LogoutURL string `yaml:"logout_url"`
	// StepUp, when set, is how this IdP is asked for stronger or fresher
	// authentication.
	StepUp *StepUp `yaml:"step_up"`
	// Userinfo, when set, completes bearer tokens with the IdP's userinfo
	// (the email a Cognito access token lacks).
	Userinfo *Userinfo `yaml:"userinfo"`
	// JWKSRefreshInterval is the longest the IdP's signing keys are used
	// before they are fetched again (a shorter Cache-Control max-age wins);
	// a key the IdP withdraws is refused within it.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// JWKSMinRefetchInterval is the least time between two fetches of the
	// keys (tokens with an unknown kid, retries after a failure).
	JWKSMinRefetchInterval time.Duration `yaml:"jwks_min_refetch_interval"`
	// JWKSMaxStale is how long the last good keys are still used while
	// every refresh fails; then tokens are refused until a fetch succeeds.
	JWKSMaxStale time.Duration `yaml:"jwks_max_stale"`

	// ResolvedClientSecret is the client secret in effect: ClientSecret,
	// or the content of ClientSecretFile. Validate fills it in.
	ResolvedClientSecret string `yaml:"-"`
}

// StepUp describes the re-authentication request sent to an IdP when
// policy asks for step-up.
type StepUp struct {
	// ACRValues is sent as acr_values.
	ACRValues string `yaml:"acr_values"`
	// MaxAge is sent as max_age (in whole seconds); zero leaves it out.
	MaxAge time.Duration `yaml:"max_age"`
}

// Userinfo configures identity enrichment of bearer tokens from the IdP's
// userinfo endpoint (docs/bearer.md#userinfo-enrichment).
type Userinfo struct {
	// URL replaces the discovered userinfo_endpoint; required with jwks_url.
	URL string `yaml:"url"`
	// CacheTTL is how long a subject's userinfo is used.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the number of subjects kept.
	CacheSize int `yaml:"cache_size"`
	// Timeout bounds one userinfo request.
	Timeout time.Duration `yaml:"timeout"`
	// OnFailure is deny or proceed.
	OnFailure string `yaml:"on_failure"`
}

// DefaultUserinfo returns the defaults of an idps[].userinfo block.
func DefaultUserinfo() Userinfo {
	return Userinfo{
		CacheTTL: authn.DefaultUserinfoCacheTTL, CacheSize: authn.DefaultUserinfoCacheSize,
		Timeout: authn.DefaultUserinfoTimeout, OnFailure: authn.UserinfoDeny,
	}
}

func (u *Userinfo) setDefaults() { *u = DefaultUserinfo() }

// Session configures the encrypted browser session cookie.
type Session struct {
	// CookieName is the cookie's name.
	CookieName string `yaml:"cookie_name"`
	// CookieDomain, when set, shares the cookie with subdomains.
	CookieDomain string `yaml:"cookie_domain"`
	// Lifetime is the longest a session lasts after sign-in.
	Lifetime time.Duration `yaml:"lifetime"`
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Secrets are the cookie keys, newest first; older ones still decrypt
	// during rotation. Each is interpreted by DecodeSecret.
	Secrets []string `yaml:"secrets"`
	// SecretsFile names a file holding the secrets instead, one per line,
	// newest first; at most one of Secrets and SecretsFile is set.
	SecretsFile string `yaml:"secrets_file"`

	// SecretKeys are the Secrets (or the lines of SecretsFile) after
	// DecodeSecret, in the same order.
	SecretKeys [][]byte `yaml:"-"`
}

// WebAuthn configures the proxy's own security key step-up.
type WebAuthn struct {
	// Enabled turns it on; it needs browser sign-in and an external_url
	// with a domain name (browsers refuse WebAuthn on IP addresses).
	Enabled bool `yaml:"enabled"`
	// RPID is the relying party id keys are bound to: the external_url's
	// host name (the default) or a parent domain of it. Changing it
	// invalidates every enrolled key.
	RPID string `yaml:"rp_id"`
	// RPName is the name browsers show when asking for the key.
	RPName string `yaml:"rp_name"`
	// EnrollMaxAge is how recent a sign-in (the first key) or a key
	// verification (later changes) must be to add or remove a key.
	EnrollMaxAge time.Duration `yaml:"enroll_max_age"`
}

// Assertion configures the identity assertion JWT the proxy signs for
// upstreams, and which assertions a sidecar accepts.
type Assertion struct {
	// SigningKeyFile is a PEM EC P-256 private key; empty means a key is
	// generated at start (and assertions do not survive restarts).
	SigningKeyFile string `yaml:"signing_key_file"`
	// NextSigningKeyFile and PreviousSigningKeyFile are published in the
	// JWKS next to the signing key but never sign: the key a rotation
	// introduces, and the one it retires (PEM EC P-256, private or public).
	NextSigningKeyFile     string `yaml:"next_signing_key_file"`
	PreviousSigningKeyFile string `yaml:"previous_signing_key_file"`
	// TTL is the lifetime of an assertion, between 10s and 10m.
	TTL time.Duration `yaml:"ttl"`
	// TrustedJWKS are the JWKS URLs or files of front proxies whose
	// assertions a sidecar accepts. Validate makes file names absolute.
	TrustedJWKS []string `yaml:"trusted_jwks"`
	// JWKSRefreshInterval, JWKSMinRefetchInterval and JWKSMaxStale keep
	// the TrustedJWKS URLs current, as the same keys of an IdP do.
	JWKSRefreshInterval    time.Duration `yaml:"jwks_refresh_interval"`
	JWKSMinRefetchInterval time.Duration `yaml:"jwks_min_refetch_interval"`
	JWKSMaxStale           time.Duration `yaml:"jwks_max_stale"`
}

// Server holds limits of the public HTTP server.
type Server struct {
	// ReadHeaderTimeout bounds reading request headers; it must be set so
	// that slow clients cannot hold connections open.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request; 0 means none.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response; 0 means none.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections; 0 means ReadTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the size of request headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds proxied request bodies; 0 means unlimited.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownGrace is how long in-flight requests get on shutdown.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool `yaml:"pprof"`
	// UpstreamTransport is the HTTP/1.1 client for http:// upstreams:
	// "lean" (default) or "standard" (net/http's Transport); a route may
	// override it.
	UpstreamTransport string `yaml:"upstream_transport"`
}

// Audit says where audit records are written.
type Audit struct {
	// Output is "stdout", "stderr" or a file name (made absolute by
	// Validate).
	Output string `yaml:"output"`
}

// Log configures the operational log.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// Route sends requests for a host and path prefix to an upstream.
type Route struct {
	// Name identifies the route in policy (Route::"name"), metrics and
	// audit; [a-z0-9_-]+.
	Name string `yaml:"name"`
	// Host is the request host, canonicalised by Validate: lower case, no
	// trailing dot, no default port. "*.example.com" matches subdomains.
	Host string `yaml:"host"`
	// PathPrefix matches on segment boundaries: "/api" matches "/api" and
	// "/api/x" but not "/apix". Validate removes a trailing slash.
	PathPrefix string `yaml:"path_prefix"`
	// Upstream is the absolute http(s) URL requests are forwarded to.
	Upstream string `yaml:"upstream"`
	// UpstreamCAFile is a PEM bundle the upstream's certificate is verified
	// against instead of the system roots.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// UpstreamServerName overrides the TLS server name sent upstream.
	UpstreamServerName string `yaml:"upstream_server_name"`
	// Auth is bearer, mtls, browser or public.
	Auth string `yaml:"auth"`
	// IdP names the IdP of the route. Validate sets it to the first IdP for
	// browser routes; on a bearer route empty means any IdP with audiences.
	IdP string `yaml:"idp"`
	// PassIdentityHeaders adds identity headers and the signed assertion.
	PassIdentityHeaders bool `yaml:"pass_identity_headers"`
	// PreserveHost sends the client's Host header upstream.
	PreserveHost bool `yaml:"preserve_host"`
	// Timeout bounds the whole upstream exchange (not WebSocket tunnels);
	// 0 means the default, 30s.
	Timeout time.Duration `yaml:"timeout"`
	// WebSocket allows connection upgrades.
	WebSocket bool `yaml:"websocket"`
	// StripPrefix removes PathPrefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
	// AllowPathParameters accepts ";" path parameters (matrix parameters,
	// ";jsessionid="): the route and policy match the path without them,
	// the upstream receives them. Off, a path with ";" is refused (400).
	AllowPathParameters bool `yaml:"allow_path_parameters"`
	// AllowedOrigins are exact origins ("https://app.example.com") besides
	// the route's own whose pages may open WebSockets with the user's
	// session cookie or client certificate. Only with websocket: true.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AWS, when set, mints the user's AWS credentials for this route and
	// re-signs forwarded requests with them.
	AWS *RouteAWS `yaml:"aws"`
	// UpstreamTransport overrides server.upstream_transport for this route
	// ("lean" or "standard"); empty inherits it.
	UpstreamTransport string `yaml:"upstream_transport"`
	// CORSPreflight "allow" forwards unauthenticated CORS preflights
	// (OPTIONS with Origin and Access-Control-Request-Method) to the
	// upstream; "" (the default) authenticates them like any request.
	CORSPreflight string `yaml:"cors_preflight"`
	// RequestHeaders are set on / removed from forwarded requests.
	RequestHeaders *HeaderRules `yaml:"request_headers"`
	// ResponseHeaders are set on / removed from the upstream's responses.
	ResponseHeaders *HeaderRules `yaml:"response_headers"`
	// PrefixRewrite replaces path_prefix in the forwarded path.
	PrefixRewrite string `yaml:"prefix_rewrite"`
	// RegexRewrite rewrites the forwarded path with an RE2 expression.
	RegexRewrite *RegexRewrite `yaml:"regex_rewrite"`
	// HostRewrite is the Host header sent upstream (instead of the
	// upstream URL's host).
	HostRewrite string `yaml:"host_rewrite"`
	// MaxBodyBytes bounds this route's request bodies (413); 0 inherits
	// server.max_body_bytes.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ConnectTimeout bounds dialling the upstream; 0 means 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// header after the request was sent; 0 means the route's timeout.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleTimeout closes pooled upstream connections idle this long; 0
	// means 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// RateLimit limits each principal's requests on this route.
	RateLimit *RouteRateLimit `yaml:"rate_limit"`
	// Upstreams replaces Upstream with several instances of one service
	// (same scheme and path), balanced by LBPolicy.
	Upstreams []string `yaml:"upstreams"`
	// LBPolicy is round_robin (default), least_request, random or
	// hash_user (each principal sticks to one upstream).
	LBPolicy string `yaml:"lb_policy"`
	// HealthCheck probes every upstream actively.
	HealthCheck *RouteHealthCheck `yaml:"health_check"`
	// OutlierDetection ejects an upstream after consecutive failures.
	OutlierDetection *RouteOutlier `yaml:"outlier_detection"`
	// GRPC marks a gRPC route (upstream h2c:// or https://): streaming
	// calls are not cut by timeout.
	GRPC bool `yaml:"grpc"`
}

// RouteHealthCheck is an active HTTP health check of a route's upstreams.
type RouteHealthCheck struct {
	Path               string        `yaml:"path"`
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"`
	HealthyThreshold   int           `yaml:"healthy_threshold"`
	UnhealthyThreshold int           `yaml:"unhealthy_threshold"`
}

// RouteOutlier is passive ejection of failing upstreams.
type RouteOutlier struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	EjectionTime        time.Duration `yaml:"ejection_time"`
}

// HeaderRules set and remove headers; values may be templates over the
// caller's identity ({{.Email}}, {{.Groups}}, {{.User}} …).
type HeaderRules struct {
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
	// Preset "security" adds HSTS (https only), X-Content-Type-Options,
	// X-Frame-Options and Referrer-Policy; response_headers only.
	Preset string `yaml:"preset"`
}

// RegexRewrite replaces every match of Pattern (RE2) in the forwarded
// path with Substitution ($1, ${name}).
type RegexRewrite struct {
	Pattern      string `yaml:"pattern"`
	Substitution string `yaml:"substitution"`
}

// RouteRateLimit is a token bucket per principal (per client address for
// unauthenticated requests), per replica.
type RouteRateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
	// MaxPrincipals bounds the limiter's memory; 0 means 100000.
	MaxPrincipals int `yaml:"max_principals"`
}

// AWS configures STS minting.
type AWS struct {
	Region      string `yaml:"region"`
	STSEndpoint string `yaml:"sts_endpoint"`
	// FederationEndpoint overrides the console sign-in federation endpoint.
	FederationEndpoint string    `yaml:"federation_endpoint"`
	Roles              []AWSRole `yaml:"roles"`
	// CacheSize bounds the minted credentials cached (per user, role and
	// template inputs); 0 means awscreds.DefaultCacheSize.
	CacheSize int `yaml:"cache_size"`
}

// AWSRole is one IAM role users may receive credentials for.
type AWSRole struct {
	Name              string            `yaml:"name"`
	RoleARN           string            `yaml:"role_arn"`
	Mode              string            `yaml:"mode"`
	Duration          time.Duration     `yaml:"duration"`
	SessionTags       map[string]string `yaml:"session_tags"`
	TransitiveTagKeys []string          `yaml:"transitive_tag_keys"`
	SessionPolicy     string            `yaml:"session_policy"`
	ExternalID        string            `yaml:"external_id"`
}

// RouteAWS says a route's upstream is an AWS service reached with the
// user's minted credentials.
type RouteAWS struct {
	Role string       `yaml:"role"`
	Sign *RouteAWSSig `yaml:"sign"`
}

// RouteAWSSig re-signs forwarded requests with SigV4.
type RouteAWSSig struct {
	Service string `yaml:"service"`
	Region  string `yaml:"region"`
	// UnsignedPayload lets bodies larger than MaxBufferedBody stream with
	// UNSIGNED-PAYLOAD (S3 only); smaller ones are still hashed and signed.
	UnsignedPayload bool `yaml:"unsigned_payload"`
	// MaxBufferedBody bounds the bytes of a body buffered in memory to hash
	// it for SigV4 (default 8 MiB, at most 64 MiB). Larger bodies stream
	// unsigned when UnsignedPayload allows, else are refused with 413.
	MaxBufferedBody int64 `yaml:"max_buffered_body"`
}

// Caches bounds the per-token caches. Each evicts its least recently used
// entry when full.
type Caches struct {
	// VerifiedTokens is the number of verified bearer tokens kept (by
	// SHA-256), so a repeated token skips the signature check.
	VerifiedTokens int `yaml:"verified_tokens"`
	// Assertions is the number of signed identity assertions kept, per
	// route, principal, device and session.
	Assertions int `yaml:"assertions"`
}

// Risk configures the behavioral risk engine.
type Risk struct {
	// Enabled turns scoring on; off, every request has score 0, level low.
	Enabled bool `yaml:"enabled"`
	// Weights are the points each signal adds.
	Weights RiskWeights `yaml:"weights"`
	// Thresholds map a score to a level: >= medium is medium, >= high is
	// high.
	Thresholds RiskThresholds `yaml:"thresholds"`
	// UnknownUserScore is the score of a user with no profile yet.
	UnknownUserScore int `yaml:"unknown_user_score"`
	// ProfileTTL and FlagTTL bound how stale a cached profile or operator
	// flag may be.
	ProfileTTL time.Duration `yaml:"profile_ttl"`
	FlagTTL    time.Duration `yaml:"flag_ttl"`
	// FlushInterval is how often observations are written behind.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// NetworkWindow is how long a seen network counts as known.
	NetworkWindow time.Duration `yaml:"network_window"`
	// HourHalfLife is the decay half-life of the hour-of-week histogram.
	HourHalfLife time.Duration `yaml:"hour_half_life"`
	// OnStoreError is step_up, deny or allow_cached.
	OnStoreError string `yaml:"on_store_error"`
	// GeoIPDatabase is an optional MaxMind mmdb file for impossible travel.
	GeoIPDatabase string `yaml:"geoip_database"`
	// MaxUsers bounds the users whose state the engine caches; beyond it
	// the least recently used is evicted (after its observations are
	// written).
	MaxUsers int `yaml:"max_users"`
	// IdleEvict forgets a user's cached state after this long without
	// requests.
	IdleEvict time.Duration `yaml:"idle_evict"`
}

// RiskWeights are the points of each risk signal.
type RiskWeights struct {
	NewNetwork       int `yaml:"new_network"`
	NewUserAgent     int `yaml:"new_user_agent"`
	NewDevice        int `yaml:"new_device"`
	UnusualHour      int `yaml:"unusual_hour"`
	Velocity         int `yaml:"velocity"`
	FailedAuth       int `yaml:"failed_auth"`
	ImpossibleTravel int `yaml:"impossible_travel"`
	FlagWatch        int `yaml:"flag_watch"`
	FlagCompromised  int `yaml:"flag_compromised"`
	// Device inventory signals (devices.enabled): the device is enrolled
	// to someone else, its posture is stale, the certificate is not an
	// enrolled device's.
	DeviceOtherOwner   int `yaml:"device_other_owner"`
	DevicePostureStale int `yaml:"device_posture_stale"`
	DeviceUnenrolled   int `yaml:"device_unenrolled"`
}

// RiskThresholds map scores to levels.
type RiskThresholds struct {
	Medium int `yaml:"medium"`
	High   int `yaml:"high"`
}

// Store selects the shared state backend.
type Store struct {
	// Backend is "embedded" (a bbolt file; the default) or "dynamodb".
	Backend string `yaml:"backend"`
	// Path is the embedded database file (made absolute by Validate).
	Path string `yaml:"path"`
	// Region, TablePrefix and Endpoint configure DynamoDB; Endpoint
	// overrides the service URL (for a local DynamoDB-compatible server).
	Region      string `yaml:"region"`
	TablePrefix string `yaml:"table_prefix"`
	Endpoint    string `yaml:"endpoint"`
	// RevocationCacheTTL bounds how long a replica may take to see a
	// session revoked through another replica.
	RevocationCacheTTL time.Duration `yaml:"revocation_cache_ttl"`
	// RevocationJournal is a local file keeping the sign-outs this replica
	// could not write to DynamoDB yet, so that a restart does not lose
	// them (made absolute by Validate; for dynamodb it defaults to
	// ztproxy-revocations.db next to Path). One process per file.
	RevocationJournal string `yaml:"revocation_journal"`
}

// Sidecar names the single service protected in sidecar mode.
type Sidecar struct {
	// Upstream is the service's absolute http(s) URL, usually on loopback.
	Upstream string `yaml:"upstream"`
	// Name is the route name used in policy and metrics.
	Name string `yaml:"name"`
	// AllowPathParameters is routes[].allow_path_parameters for the
	// implicit route.
	AllowPathParameters bool `yaml:"allow_path_parameters"`
}

// DefaultFile returns a File holding every default value. Parse decodes on
// top of it, so keys left out of the YAML keep these values.
func DefaultFile() File {
	return File{
		Mode:     ModeProxy,
		TLS:      TLS{ClientAuth: ClientAuthNone},
		Timezone: "UTC",
		Session: Session{
			CookieName:  "_ztp_session",
			Lifetime:    12 * time.Hour,
			IdleTimeout: time.Hour,
		},
		Assertion: Assertion{
			TTL:                 60 * time.Second,
			JWKSRefreshInterval: authn.DefaultJWKSRefreshInterval, JWKSMinRefetchInterval: authn.DefaultJWKSMinRefetchInterval,
			JWKSMaxStale: authn.DefaultJWKSMaxStale,
		},
		Server: Server{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    65536,
			ShutdownGrace:     30 * time.Second,
			UpstreamTransport: UpstreamTransportLean,
		},
		Audit:    Audit{Output: "stdout"},
		Store:    Store{Backend: "embedded", Path: "ztproxy.db", TablePrefix: "ztproxy_", RevocationCacheTTL: 30 * time.Second},
		Risk:     DefaultRisk(),
		Caches:   Caches{VerifiedTokens: authn.DefaultTokenCacheSize, Assertions: proxy.DefaultAssertionCacheSize},
		WebAuthn: WebAuthn{Enabled: true, RPName: "ztproxy", EnrollMaxAge: 5 * time.Minute},
		Devices:  DefaultDevices(),
		Log:      Log{Level: "info", Format: "json"},
		Location: time.UTC,
	}
}

// DefaultRisk returns the risk engine defaults: riskengine's, the one
// source of them (issue 15.17).
func DefaultRisk() Risk {
	w, th := riskengine.DefaultWeights, riskengine.DefaultThresholds
	return Risk{
		Enabled: true,
		Weights: RiskWeights{NewNetwork: w.NewNetwork, NewUserAgent: w.NewUserAgent, NewDevice: w.NewDevice,
			UnusualHour: w.UnusualHour, Velocity: w.Velocity, FailedAuth: w.FailedAuth,
			ImpossibleTravel: w.ImpossibleTravel, FlagWatch: w.FlagWatch, FlagCompromised: w.FlagCompromised,
			DeviceOtherOwner: w.DeviceOtherOwner, DevicePostureStale: w.DevicePostureStale, DeviceUnenrolled: w.DeviceUnenrolled},
		Thresholds:       RiskThresholds{Medium: th.Medium, High: th.High},
		UnknownUserScore: riskengine.DefaultUnknownUserScore, ProfileTTL: riskengine.DefaultProfileTTL,
		FlagTTL: riskengine.DefaultFlagTTL, FlushInterval: riskengine.DefaultFlushInterval,
		NetworkWindow: riskengine.DefaultNetworkWindow, HourHalfLife: riskengine.DefaultHourHalfLife,
		OnStoreError: string(riskengine.DefaultOnStoreError),
		MaxUsers:     riskengine.DefaultMaxUsers, IdleEvict: riskengine.DefaultIdleEvict,
	}
}

// DefaultIdP returns the defaults every entry of idps starts from.
func DefaultIdP() IdP {
	return IdP{
		GroupsClaim:         "groups",
		Scopes:              []string{"openid", "email", "profile"},
		JWKSRefreshInterval: authn.DefaultJWKSRefreshInterval, JWKSMinRefetchInterval: authn.DefaultJWKSMinRefetchInterval,
		JWKSMaxStale: authn.DefaultJWKSMaxStale,
	}
}

// DefaultRoute returns the defaults every entry of routes starts from.
func DefaultRoute() Route {
	return Route{
		PathPrefix:          "/",
		PassIdentityHeaders: true,
		Timeout:             30 * time.Second,
	}
}

// DefaultSidecar returns the defaults of the sidecar block.
func DefaultSidecar() Sidecar {
	return Sidecar{Name: "service"}
}

func (i *IdP) setDefaults()     { *i = DefaultIdP() }
func (r *Route) setDefaults()   { *r = DefaultRoute() }
func (s *Sidecar) setDefaults() { *s = DefaultSidecar() }

// defaulter is implemented by list elements and optional blocks that have
// defaults of their own.
type defaulter interface{ setDefaults() }
