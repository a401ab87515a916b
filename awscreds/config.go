// Package awscreds mints short-lived AWS credentials for the principal of a
// request (AssumeRole or AssumeRoleWithWebIdentity through the real
// aws-sdk-go-v2 STS client), caches them per principal, role and session
// attributes until shortly before they expire, and re-signs upstream requests
// with SigV4.
//
// Every session carries the user's identity: SourceIdentity is the sanitised
// email (or subject) and RoleSessionName starts with a user-derived name, so
// CloudTrail attributes each AWS call to a person. Lifetimes are capped by the
// user's session and by risk: at medium risk sessions last the 15-minute
// minimum; at high risk nothing is minted.
package awscreds

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Mode says how a role is assumed.
type Mode string

// Modes.
const (
	// ModeWebIdentity calls AssumeRoleWithWebIdentity with the user's ID
	// token; the IdP must be an IAM OIDC identity provider the role trusts.
	ModeWebIdentity Mode = "web_identity"
	// ModeAssumeRole calls AssumeRole with the proxy's own credentials.
	ModeAssumeRole Mode = "assume_role"
)

// STS limits this package checks before calling STS.
const (
	MinDuration     = 900 * time.Second
	MaxDuration     = 12 * time.Hour
	DefaultDuration = 15 * time.Minute

	MaxSessionTags      = 50
	MaxTagKeyLen        = 128
	MaxTagValueLen      = 256
	MaxSessionPolicyLen = 2048
	// PackedBudget is the packed-size budget in bytes used by Validate's
	// estimate: ceil(len(compact policy)/2) + Σ len(tag key)+len(tag value)
	// must not exceed it. AWS does not document its packing, so this is an
	// estimate (the same rule internal/stsdouble enforces); STS stays the
	// authority and reports PackedPolicyTooLarge.
	PackedBudget = 2048
)

// Defaults for the STS client's retries.
const (
	DefaultRetryMaxAttempts = 4
	DefaultRetryMaxBackoff  = 2 * time.Second
)

var roleARNPattern = regexp.MustCompile(`^arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)

// RoleConfig is one named role a route can ask for.
type RoleConfig struct {
	// Name is what routes refer to.
	Name string
	// RoleARN is the IAM role to assume.
	RoleARN string
	// Mode selects AssumeRoleWithWebIdentity or AssumeRole.
	Mode Mode
	// Duration is the session length, 900s..12h; DefaultDuration when zero.
	// It must not exceed the role's MaxSessionDuration in IAM.
	Duration time.Duration
	// SessionTags maps tag keys to text/template values over {{.Email}},
	// {{.Sub}}, {{.Groups}} (joined with ":"), {{.DeviceID}}, {{.RiskLevel}}
	// and {{.Route}}. A rendered value with characters STS rejects refuses
	// the mint (ErrTemplateInput), as does an unverified email or one with
	// an IAM wildcard or separator (see checkInputs). Only ModeAssumeRole can
	// pass tags; web identity sessions take their tags from the token's
	// https://aws.amazon.com/tags claim.
	SessionTags map[string]string
	// TransitiveTagKeys must be a subset of the SessionTags keys.
	TransitiveTagKeys []string
	// SessionPolicy is an inline JSON policy template over the same fields,
	// which are JSON-escaped (with \u escapes for non-ASCII) before they are
	// inserted, so user data cannot change the policy's structure; values
	// holding characters IAM interprets (* ? $ { } / :) refuse the mint, so
	// user data cannot change what an ARN or condition matches either.
	// Prefer IAM policy variables (${aws:PrincipalTag/email}).
	SessionPolicy string
	// ExternalID is sent as sts:ExternalId (ModeAssumeRole only).
	ExternalID string
}

// Config configures a Minter.
type Config struct {
	// Region is the STS signing region and, without STSEndpoint, selects the
	// regional endpoint.
	Region string
	// STSEndpoint overrides the STS endpoint URL.
	STSEndpoint string
	// Roles are the named roles.
	Roles []RoleConfig
	// HTTPClient carries STS calls; the SDK's default client when nil.
	HTTPClient *http.Client
	// Now is the clock for cache expiry and session caps; time.Now when nil.
	Now func() time.Time
	// Credentials are the proxy's own credentials, required when any role
	// uses ModeAssumeRole.
	Credentials aws.CredentialsProvider
	// Logger receives mint and fallback events; slog.Default when nil.
	// Secrets and session tokens are never logged.
	Logger *slog.Logger
	// OnMint, if set, is called after every STS call with its latency and
	// result, for metrics. Use STSErrorCode(err) as a bounded label.
	OnMint func(role string, latency time.Duration, err error)
	// OnCacheHit, if set, is called when credentials are served from cache.
	OnCacheHit func(role string)
	// RetryMaxAttempts bounds STS attempts per mint (1..5);
	// DefaultRetryMaxAttempts when zero.
	RetryMaxAttempts int
	// RetryMaxBackoff caps the jittered backoff between attempts;
	// DefaultRetryMaxBackoff when zero.
	RetryMaxBackoff time.Duration
	// CacheSize bounds the credentials cached (one per user, role and
	// template inputs); DefaultCacheSize when zero. When full, the least
	// recently used go.
	CacheSize int
}

// DefaultCacheSize is Config.CacheSize's default.
const DefaultCacheSize = 10000

// Validate reports every problem in the configuration at once, each with its
// path (e.g. "aws.roles[1].duration: ..."). It has no side effects and makes
// no network calls, so check-config can run it.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("aws.%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.Region == "" {
		add("region", "required")
	}
	if c.STSEndpoint != "" {
		if u, err := url.Parse(c.STSEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("sts_endpoint", "must be an absolute http(s) URL, got %q", c.STSEndpoint)
		}
	}
	if c.RetryMaxAttempts < 0 || c.RetryMaxAttempts > 5 {
		add("retry_max_attempts", "must be between 1 and 5, got %d", c.RetryMaxAttempts)
	}
	seen := map[string]int{}
	for i, r := range c.Roles {
		path := fmt.Sprintf("roles[%d]", i)
		if r.Name == "" {
			add(path+".name", "required")
		} else if j, dup := seen[r.Name]; dup {
			add(path+".name", "%q is already used by roles[%d]", r.Name, j)
		} else {
			seen[r.Name] = i
		}
		for _, problem := range validateRole(r) {
			add(path+"."+problem.field, "%s", problem.msg)
		}
	}
	return errors.Join(errs...)
}

// problem is one finding of validateRole, relative to the role's path.
type problem struct{ field, msg string }

func validateRole(r RoleConfig) []problem {
	var out []problem
	add := func(field, format string, args ...any) {
		out = append(out, problem{field, fmt.Sprintf(format, args...)})
	}
	if !roleARNPattern.MatchString(r.RoleARN) {
		add("role_arn", "must look like arn:aws:iam::123456789012:role/NAME, got %q", r.RoleARN)
	}
	switch r.Mode {
	case ModeAssumeRole:
	case ModeWebIdentity:
		if len(r.SessionTags) > 0 {
			add("session_tags", "not supported with mode web_identity (AssumeRoleWithWebIdentity takes tags only from the token's https://aws.amazon.com/tags claim)")
		}
		if r.ExternalID != "" {
			add("external_id", "not supported with mode web_identity")
		}
	default:
		add("mode", "must be %q or %q, got %q", ModeWebIdentity, ModeAssumeRole, r.Mode)
	}
	if r.Duration != 0 && (r.Duration < MinDuration || r.Duration > MaxDuration) {
		add("duration", "must be between 15m and 12h, got %v", r.Duration)
	}
	if r.ExternalID != "" && (len(r.ExternalID) < 2 || len(r.ExternalID) > 1224 || !externalIDPattern.MatchString(r.ExternalID)) {
		add("external_id", `must be 2-1224 characters of [\w+=,.@:/-]`)
	}
	out = append(out, validateTags(r)...)
	out = append(out, validatePolicy(r)...)
	return out
}

var externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]*$`)

func validateTags(r RoleConfig) []problem {
	var out []problem
	add := func(field, format string, args ...any) {
		out = append(out, problem{field, fmt.Sprintf(format, args...)})
	}
	if len(r.SessionTags) > MaxSessionTags {
		add("session_tags", "%d tags, STS allows at most %d", len(r.SessionTags), MaxSessionTags)
	}
	lower := map[string]string{}
	for _, key := range sortedKeys(r.SessionTags) {
		field := "session_tags." + key
		switch {
		case len([]rune(key)) > MaxTagKeyLen:
			add(field, "key is %d characters, STS allows at most %d", len([]rune(key)), MaxTagKeyLen)
		case !tagValuePattern.MatchString(key) || key == "":
			add(field, `key must match [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			add(field, `key must not start with "aws:"`)
		}
		if other, dup := lower[strings.ToLower(key)]; dup {
			add(field, "duplicates key %q (tag keys are case-insensitive)", other)
		}
		lower[strings.ToLower(key)] = key
		tmpl, err := parseTemplate(key, r.SessionTags[key])
		if err != nil {
			add(field, "%v", err)
			continue
		}
		if n := literalLen(tmpl); n > MaxTagValueLen {
			add(field, "literal text alone is %d characters, STS allows at most %d", n, MaxTagValueLen)
		} else if worst, ok := worstCaseLen(tmpl); ok && worst > MaxTagValueLen {
			add(field, "value can reach %d characters (worst case: %s), STS allows at most %d", worst, fieldBoundsDoc, MaxTagValueLen)
		}
		if _, err := renderTag(tmpl, sampleData()); err != nil {
			add(field, "%v", err)
		}
	}
	for i, key := range r.TransitiveTagKeys {
		if _, ok := lower[strings.ToLower(key)]; !ok {
			add(fmt.Sprintf("transitive_tag_keys[%d]", i), "%q is not a session tag key", key)
		}
	}
	return out
}

func validatePolicy(r RoleConfig) []problem {
	if r.SessionPolicy == "" {
		return nil
	}
	var out []problem
	add := func(format string, args ...any) {
		out = append(out, problem{"session_policy", fmt.Sprintf(format, args...)})
	}
	tmpl, err := parseTemplate("session_policy", r.SessionPolicy)
	if err != nil {
		add("%v", err)
		return out
	}
	policy, err := renderPolicy(tmpl, sampleData())
	if err != nil {
		add("%v", err)
		return out
	}
	if len(policy) > MaxSessionPolicyLen {
		add("is %d characters after templating a sample (compacted), STS allows at most %d", len(policy), MaxSessionPolicyLen)
	}
	packed := (len(policy) + 1) / 2
	for key, value := range r.SessionTags {
		if t, err := parseTemplate(key, value); err == nil {
			if v, err := renderTag(t, sampleData()); err == nil {
				packed += len(key) + len(v)
			}
		}
	}
	if packed > PackedBudget {
		add("policy and session tags pack to an estimated %d bytes for a sample user, over the %d-byte budget (STS would answer PackedPolicyTooLarge)", packed, PackedBudget)
	}
	return out
}

// withDefaults returns a copy of the configuration with defaults applied.
func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RetryMaxAttempts == 0 {
		c.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	if c.RetryMaxBackoff == 0 {
		c.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	roles := make([]RoleConfig, len(c.Roles))
	for i, r := range c.Roles {
		if r.Duration == 0 {
			r.Duration = DefaultDuration
		}
		roles[i] = r
	}
	c.Roles = roles
	return c
}
