// Package stsdouble is a protocol-faithful test double of the AWS Security
// Token Service, used only for what the real STS implementation the tests
// run, MinIO (testenv.StartMinIO), cannot check:
//
//   - SourceIdentity, session tags and transitive tag keys, which MinIO
//     ignores, and STS's parameter rules and limits on them;
//   - the console federation sign-in (getSigninToken), which MinIO lacks;
//   - failures on demand (ThrottleNext, FailNext) and a test clock for
//     expiry, which no real server offers;
//   - SigV4 verification in unit tests of the awscreds package, where a
//     spawned MinIO per test would cost seconds.
//
// Everything else (AssumeRole, AssumeRoleWithWebIdentity against the test
// OP, S3 re-signing, session policies, credential_process, outages) is
// tested against MinIO. The double's SigV4 check re-signs with the same
// aws-sdk-go-v2 signer the proxy uses, so it cannot catch a canonicalisation
// the two share; MinIO's own implementation can (issue 14.1).
//
// The double speaks the STS Query API (form-encoded POST, Version=2011-06-15)
// and answers with the XML bodies and XML error envelopes that AWS documents.
// It verifies the SigV4 signature of AssumeRole and GetCallerIdentity calls
// against configured access keys (and against credentials it issued itself,
// which is role chaining), verifies the web identity token of
// AssumeRoleWithWebIdentity against a JWKS URL with go-oidc, and enforces the
// documented STS parameter rules and limits. Knobs let a test throttle or fail
// the next calls, count calls per action and inspect the last request.
//
// Clock handling: Config.Now drives everything the double decides about time
// it owns (credential expiration, expiry of issued session credentials, web
// identity token expiry). The SigV4 clock-skew check compares against the wall
// clock, because the SDK signs requests with the wall clock.
package stsdouble

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Defaults applied by Start when the corresponding Config field is zero.
const (
	DefaultAccountID          = "123456789012"
	DefaultMaxSessionDuration = time.Hour
	// DefaultPackedPolicyLimit is the packed-size budget in bytes. AWS does not
	// document its binary packing, so the double defines its own: the packed
	// size of a request is ceil(len(compact JSON policy)/2) plus, for every
	// session tag, len(key)+len(value). PackedPolicySize in responses is that
	// size as a percentage of the limit, and a request above 100 % fails with
	// PackedPolicyTooLarge.
	DefaultPackedPolicyLimit = 2048
	// DefaultMaxClockSkew is how far X-Amz-Date may be from the wall clock.
	DefaultMaxClockSkew = 15 * time.Minute
)

// Role is an IAM role the double knows about. Only configured roles can be
// assumed; any other ARN gets AccessDenied, as a missing trust would.
type Role struct {
	// ARN is the role ARN, e.g. "arn:aws:iam::123456789012:role/analyst".
	ARN string
	// MaxSessionDuration is the role's maximum session duration, 1h by
	// default and at most 12h.
	MaxSessionDuration time.Duration
	// ExternalID, when set, must be presented by AssumeRole callers (the
	// sts:ExternalId trust condition).
	ExternalID string
}

// OIDC configures AssumeRoleWithWebIdentity: the IAM OIDC identity provider
// the roles trust.
type OIDC struct {
	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience must be among the token's aud values (the provider's client
	// id list in IAM).
	Audience string
	// JWKSURL is where the provider's signing keys are fetched from.
	JWKSURL string
	// HTTPClient fetches the JWKS; http.DefaultClient when nil.
	HTTPClient *http.Client
}

// Config configures a double.
type Config struct {
	// AccountID is the account of every role and issued session.
	AccountID string
	// Region, when set, is the only region accepted in SigV4 credential
	// scopes. When empty any region is accepted.
	Region string
	// AccessKeys maps long-term access key ids to their secrets. These are
	// the identities allowed to call AssumeRole.
	AccessKeys map[string]string
	// Roles are the roles that can be assumed.
	Roles []Role
	// OIDC enables AssumeRoleWithWebIdentity; nil rejects every web identity.
	OIDC *OIDC
	// Now is the clock for expirations; time.Now when nil.
	Now func() time.Time
	// PackedPolicyLimit overrides DefaultPackedPolicyLimit (bytes).
	PackedPolicyLimit int
	// MaxClockSkew overrides DefaultMaxClockSkew; negative disables the check.
	MaxClockSkew time.Duration
}

// Recorded is one request as the double saw it.
type Recorded struct {
	Action string
	// Params are the decoded form parameters, including Action and Version.
	Params url.Values
	// AccessKeyID is the signing key id; empty for unsigned calls.
	AccessKeyID string
}

// Server is a running double. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to use as the STS endpoint.
	URL string

	cfg      Config
	roles    map[string]Role
	verifier *tokenVerifier
	srv      *httptest.Server

	mu       sync.Mutex
	throttle int
	fail     int
	calls    map[string]int
	last     Recorded
	issued   map[string]issuedCredentials
}

// issuedCredentials are session credentials the double handed out.
type issuedCredentials struct {
	secret, token string
	expiration    time.Time
	arn           string
}

// Start starts a double and stops it when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PackedPolicyLimit == 0 {
		cfg.PackedPolicyLimit = DefaultPackedPolicyLimit
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	s := &Server{
		cfg:    cfg,
		roles:  make(map[string]Role, len(cfg.Roles)),
		calls:  make(map[string]int),
		issued: make(map[string]issuedCredentials),
	}
	for _, r := range cfg.Roles {
		if r.MaxSessionDuration == 0 {
			r.MaxSessionDuration = DefaultMaxSessionDuration
		}
		if r.MaxSessionDuration < time.Hour || r.MaxSessionDuration > 12*time.Hour {
			t.Fatalf("stsdouble: role %s: MaxSessionDuration %v outside 1h..12h", r.ARN, r.MaxSessionDuration)
		}
		s.roles[r.ARN] = r
	}
	if cfg.OIDC != nil {
		s.verifier = newTokenVerifier(*cfg.OIDC, cfg.Now)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Client returns an HTTP client that reaches the double.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// ThrottleNext makes the next n calls fail with 400 Throttling "Rate exceeded".
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// FailNext makes the next n calls fail with 500 InternalFailure. Throttling
// takes precedence when both are armed.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

// Calls reports how many requests for action the double received, including
// throttled, failed and rejected ones.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// LastRequest returns a copy of the most recent request the double received.
func (s *Server) LastRequest() Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last
	r.Params = cloneValues(r.Params)
	return r
}

// SecretFor returns the secret and session token of credentials the double
// issued, so a test upstream can verify requests signed with them.
func (s *Server) SecretFor(accessKeyID string) (secret, sessionToken string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.issued[accessKeyID]
	return c.secret, c.token, ok
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	if r.Method != http.MethodPost {
		// The Query API also accepts GET, but the SDK never sends it; keep the
		// double strict so a misconfigured client shows up loudly.
		writeError(w, requestID, &Error{Status: http.StatusMethodNotAllowed, Code: "InvalidAction", Message: "Only POST is supported by this double."})
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, requestID, &Error{Status: http.StatusBadRequest, Code: "MalformedQueryString", Message: err.Error()})
		return
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, requestID, &Error{Status: http.StatusBadRequest, Code: "MalformedQueryString", Message: "The query string is malformed."})
		return
	}
	action := params.Get("Action")
	if injected := s.record(action, params, accessKeyOf(r)); injected != nil {
		writeError(w, requestID, injected)
		return
	}
	if e := s.dispatch(w, r, body, params, requestID); e != nil {
		writeError(w, requestID, e)
	}
}

// record counts and records a request and reports an injected failure, if a
// knob is armed.
func (s *Server) record(action string, params url.Values, akid string) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	s.last = Recorded{Action: action, Params: cloneValues(params), AccessKeyID: akid}
	switch {
	case s.throttle > 0:
		s.throttle--
		return &Error{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}
	case s.fail > 0:
		s.fail--
		return &Error{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: "The request processing has failed because of an unknown error, exception or failure."}
	}
	return nil
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, body []byte, params url.Values, requestID string) *Error {
	action := params.Get("Action")
	if action == "" {
		return &Error{Status: http.StatusBadRequest, Code: "MissingAction", Message: "Missing Action"}
	}
	if v := params.Get("Version"); v != apiVersion {
		return &Error{Status: http.StatusBadRequest, Code: "InvalidAction", Message: "Could not find operation " + action + " for version " + v}
	}
	switch action {
	case "AssumeRole":
		caller, e := s.authenticate(r, body, "sts")
		if e != nil {
			return e
		}
		result, e := s.assumeRole(caller, params)
		if e != nil {
			return e
		}
		writeXML(w, assumeRoleResponse{Xmlns: xmlns, Result: *result, Metadata: responseMetadata{RequestID: requestID}}, requestID)
	case "AssumeRoleWithWebIdentity":
		result, e := s.assumeRoleWithWebIdentity(r, params)
		if e != nil {
			return e
		}
		writeXML(w, assumeRoleWithWebIdentityResponse{Xmlns: xmlns, Result: *result, Metadata: responseMetadata{RequestID: requestID}}, requestID)
	case "GetCallerIdentity":
		caller, e := s.authenticate(r, body, "sts")
		if e != nil {
			return e
		}
		writeXML(w, getCallerIdentityResponse{
			Xmlns:    xmlns,
			Result:   getCallerIdentityResult{Arn: caller.arn, UserID: caller.accessKeyID, Account: s.cfg.AccountID},
			Metadata: responseMetadata{RequestID: requestID},
		}, requestID)
	default:
		return &Error{Status: http.StatusBadRequest, Code: "InvalidAction", Message: "Could not find operation " + action + " for version " + apiVersion}
	}
	return nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
