package awscreds

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"ztproxy/identity"
)

// Errors callers act on; the proxy maps them to HTTP statuses.
var (
	// ErrUnknownRole means the request named a role that is not configured.
	ErrUnknownRole = errors.New("awscreds: unknown role")
	// ErrRiskTooHigh means the request's risk level forbids minting.
	ErrRiskTooHigh = errors.New("awscreds: risk too high for AWS credentials")
	// ErrSessionTooShort means the user's session ends before the 15-minute
	// STS minimum; the user must sign in again.
	ErrSessionTooShort = errors.New("awscreds: session ends too soon for AWS credentials")
	// ErrSTSUnavailable means STS kept failing (throttling, 5xx, network)
	// and no cached credentials were fresh enough to serve instead.
	ErrSTSUnavailable = errors.New("awscreds: STS unavailable")
)

const (
	// refreshBefore is how long before expiry cached credentials are renewed.
	refreshBefore = 5 * time.Minute
	// staleMargin is the least remaining lifetime for serving cached
	// credentials while STS is failing.
	staleMargin = time.Minute
	// failureBackoff is how long stale credentials are served without
	// another STS attempt after a failed refresh.
	failureBackoff = 10 * time.Second
	// mintTimeout bounds one mint, including retries; it is detached from
	// the first caller's context because other callers share the result.
	mintTimeout = 30 * time.Second
)

// Request asks for credentials for one principal and role.
type Request struct {
	Role      string
	Principal identity.Principal
	// DeviceID, RiskLevel and Route feed the session templates; RiskLevel
	// ("low", "medium", "high"; empty means low) also caps the lifetime.
	DeviceID, RiskLevel, Route string
	// WebIdentityToken is the user's ID token, required for web_identity.
	WebIdentityToken string
	// SessionExpiry, when set, is when the user's session ends; credentials
	// never outlive it.
	SessionExpiry time.Time
}

// Credentials are minted AWS session credentials. Never log the secret or
// the session token.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
	SourceIdentity, AssumedRoleARN             string
}

// Minter mints and caches credentials. It is safe for concurrent use.
type Minter struct {
	cfg    Config
	roles  map[string]*role
	client *sts.Client

	mu     sync.Mutex
	cache  *simplelru.LRU[cacheKey, *entry] // bounded by Config.CacheSize
	flight singleflight.Group
}

// role is a RoleConfig with its templates parsed.
type role struct {
	cfg    RoleConfig
	keys   []string // sorted tag keys
	tags   map[string]*template.Template
	policy *template.Template
	// fields are the template fields the role reads (the cache key);
	// tagFields and policyFields split them by where they land.
	fields, tagFields, policyFields fieldSet
}

// cacheKey identifies interchangeable credentials. inputs holds the values
// of exactly the template fields the role reads, which determine the tag
// set and session policy as surely as their hashes would, without rendering
// templates on the hot path.
type cacheKey struct {
	principal, role string
	mediumRisk      bool
	inputs          string
}

type entry struct {
	principal  string
	creds      Credentials
	refreshAt  time.Time
	retryAfter time.Time
}

// New validates cfg and builds a Minter with a real STS client.
func New(cfg Config) (*Minter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Minter{cfg: cfg, roles: make(map[string]*role, len(cfg.Roles))}
	m.cache, _ = simplelru.NewLRU[cacheKey, *entry](cfg.CacheSize, nil) // CacheSize > 0 after withDefaults
	for _, rc := range cfg.Roles {
		if rc.Mode == ModeAssumeRole && cfg.Credentials == nil {
			return nil, fmt.Errorf("awscreds: role %q uses assume_role but no proxy credentials are configured", rc.Name)
		}
		r := &role{cfg: rc, keys: sortedKeys(rc.SessionTags), tags: make(map[string]*template.Template, len(rc.SessionTags))}
		for key, text := range rc.SessionTags {
			t, _ := parseTemplate(key, text) // Validate parsed it already
			r.tags[key] = t
			r.tagFields |= fieldsUsed(t)
		}
		if rc.SessionPolicy != "" {
			r.policy, _ = parseTemplate("session_policy", rc.SessionPolicy)
			r.policyFields = fieldsUsed(r.policy)
		}
		r.fields = r.tagFields | r.policyFields
		m.roles[rc.Name] = r
	}
	awsCfg := aws.Config{
		Region:      cfg.Region,
		Credentials: cfg.Credentials,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.RetryMaxAttempts
				o.MaxBackoff = cfg.RetryMaxBackoff
				// The client-side retry quota would turn a long throttling
				// episode into instant failures; the cache covers outages.
				o.RateLimiter = ratelimit.None
			})
		},
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
	}
	if cfg.STSEndpoint != "" {
		awsCfg.BaseEndpoint = aws.String(cfg.STSEndpoint)
	}
	m.client = sts.NewFromConfig(awsCfg)
	return m, nil
}

// Credentials returns credentials for req, from cache when fresh, else from
// one STS call shared by every concurrent request for the same key.
func (m *Minter) Credentials(ctx context.Context, req Request) (Credentials, error) {
	r, ok := m.roles[req.Role]
	if !ok {
		return Credentials{}, fmt.Errorf("%w: %q", ErrUnknownRole, req.Role)
	}
	if req.Principal.ID == "" || req.Principal.Kind == identity.KindAnonymous {
		return Credentials{}, errors.New("awscreds: an authenticated principal is required")
	}
	var medium bool
	switch identity.RiskLevel(req.RiskLevel) {
	case "", identity.RiskLow:
	case identity.RiskMedium:
		medium = true
	default: // high, or a level this package does not know: fail closed
		return Credentials{}, fmt.Errorf("%w: level %q", ErrRiskTooHigh, req.RiskLevel)
	}
	key := cacheKey{principal: req.Principal.ID, role: req.Role, mediumRisk: medium, inputs: r.inputs(req)}
	now := m.cfg.Now()
	if creds, ok := m.lookup(key, req, now, false); ok {
		if m.cfg.OnCacheHit != nil {
			m.cfg.OnCacheHit(req.Role)
		}
		return creds, nil
	}
	// A request already abandoned mints nothing (and the select below
	// could otherwise pick a fast answer over the cancellation).
	if err := ctx.Err(); err != nil {
		return Credentials{}, fmt.Errorf("awscreds: %w", err)
	}
	ch := m.flight.DoChan(key.flightKey(), func() (any, error) {
		mintCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mintTimeout)
		defer cancel()
		return m.refresh(mintCtx, r, key, req)
	})
	select {
	case <-ctx.Done():
		return Credentials{}, fmt.Errorf("awscreds: %w", ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return Credentials{}, res.Err
		}
		return res.Val.(Credentials), nil
	}
}

// lookup returns cached credentials for key that req may use: fresh ones,
// or with stale set, ones that still have more than staleMargin to live.
func (m *Minter) lookup(key cacheKey, req Request, now time.Time, stale bool) (Credentials, bool) {
	m.mu.Lock()
	e, ok := m.cache.Get(key)
	m.mu.Unlock()
	if !ok || e.principal != req.Principal.ID { // the key holds the id; this is belt and braces
		return Credentials{}, false
	}
	if !req.SessionExpiry.IsZero() && e.creds.Expiration.After(req.SessionExpiry) {
		return Credentials{}, false
	}
	usable := now.Add(staleMargin).Before(e.creds.Expiration)
	if now.Before(e.refreshAt) || (usable && (stale || now.Before(e.retryAfter))) {
		return e.creds, true
	}
	return Credentials{}, false
}

// refresh runs inside the singleflight: it re-checks the cache, mints, and
// on an availability failure falls back to still-usable cached credentials.
func (m *Minter) refresh(ctx context.Context, r *role, key cacheKey, req Request) (Credentials, error) {
	now := m.cfg.Now()
	if creds, ok := m.lookup(key, req, now, false); ok {
		return creds, nil
	}
	duration := r.cfg.Duration
	if key.mediumRisk {
		duration = MinDuration
	}
	if !req.SessionExpiry.IsZero() {
		left := req.SessionExpiry.Sub(now).Truncate(time.Second)
		if left < MinDuration {
			return Credentials{}, fmt.Errorf("%w: %v left", ErrSessionTooShort, left)
		}
		duration = min(duration, left)
	}
	creds, err := m.mint(ctx, r, req, duration)
	if err == nil {
		m.store(key, req.Principal.ID, creds, now)
		return creds, nil
	}
	if !isUnavailable(err) {
		return Credentials{}, err
	}
	if cached, ok := m.lookup(key, req, now, true); ok {
		m.markFailed(key, now)
		m.cfg.Logger.Warn("awscreds: STS failing, serving cached credentials",
			"role", req.Role, "principal", req.Principal.ID, "access_key_id", cached.AccessKeyID,
			"expiration", cached.Expiration, "error", err)
		return cached, nil
	}
	return Credentials{}, fmt.Errorf("%w: %w", ErrSTSUnavailable, err)
}

func (m *Minter) store(key cacheKey, principal string, creds Credentials, _ time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Expired entries are not swept (that was a scan per mint, issue 23):
	// lookup refuses them and they age out of the LRU like any other.
	m.cache.Add(key, &entry{principal: principal, creds: creds, refreshAt: creds.Expiration.Add(-refreshBefore)})
}

func (m *Minter) markFailed(key cacheKey, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.cache.Peek(key); ok {
		updated := *e
		updated.retryAfter = now.Add(failureBackoff)
		m.cache.Add(key, &updated)
	}
}

// inputs serialises the template fields the role reads, length-prefixed so
// that distinct tuples never collide.
func (r *role) inputs(req Request) string {
	if r.fields == 0 {
		return ""
	}
	var b strings.Builder
	put := func(bit fieldSet, value string) {
		if r.fields&bit != 0 {
			b.WriteString(strconv.Itoa(len(value)))
			b.WriteByte(':')
			b.WriteString(value)
		}
	}
	put(fieldEmail, req.Principal.Email)
	put(fieldSub, req.Principal.Subject)
	if r.fields&fieldGroups != 0 {
		put(fieldGroups, strings.Join(req.Principal.Groups, ":"))
	}
	put(fieldDeviceID, req.DeviceID)
	put(fieldRiskLevel, req.RiskLevel)
	put(fieldRoute, req.Route)
	return b.String()
}

func (k cacheKey) flightKey() string {
	return strconv.Itoa(len(k.principal)) + ":" + k.principal + strconv.Itoa(len(k.role)) + ":" + k.role +
		strconv.FormatBool(k.mediumRisk) + ":" + k.inputs
}
