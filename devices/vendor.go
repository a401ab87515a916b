package devices

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"ztproxy/identity"
)

// SignatureVerifier checks a compact JWS against a vendor's keys and
// returns its payload; claims are not checked. authn.KeySet implements
// it (JWKS URL with scheduled refresh, never following redirects, or a
// static JWKS file).
type SignatureVerifier interface {
	VerifySignature(ctx context.Context, raw string) ([]byte, error)
}

// Vendor is an EDR or MDM product whose signed posture assertions (a JWS
// the vendor's agent leaves on the device, such as a CrowdStrike ZTA
// score) are accepted in device reports.
type Vendor struct {
	// Name labels the facts' source ("vendor:<name>") and log lines.
	Name string
	// Issuer is the exact iss of the vendor's assertions.
	Issuer string
	// Audience, when set, must be in the assertion's aud.
	Audience string
	// DeviceClaim names the claim that binds the assertion to the device:
	// its value must be the ztproxy device id or SPIFFE id. Default "sub".
	DeviceClaim string
	// ScoreClaim is the dotted path of a 0–100 score claim
	// ("assessment.overall"); empty for none.
	ScoreClaim string
	// FactClaims map posture facts (disk_encrypted, firewall, …) to the
	// dotted claim paths holding them.
	FactClaims map[string]string
	// Keys verify the signature.
	Keys SignatureVerifier
}

// check validates v and fills defaults.
func (v *Vendor) check() error {
	var errs []error
	if v.Name == "" || strings.ContainsAny(v.Name, " \t\r\n:") {
		errs = append(errs, fmt.Errorf("name: %q must be a non-empty word", v.Name))
	}
	if v.Issuer == "" {
		errs = append(errs, errors.New("issuer: required"))
	}
	if v.Keys == nil {
		errs = append(errs, errors.New("jwks_url or jwks_file: required"))
	}
	if v.DeviceClaim == "" {
		v.DeviceClaim = "sub"
	}
	for fact := range v.FactClaims {
		if _, ok := identity.KindOf(fact); !ok || fact == identity.FactScore {
			errs = append(errs, fmt.Errorf("fact_claims: %q is not a posture fact (use score_claim for the score)", fact))
		}
	}
	return errors.Join(errs...)
}

// Bounds of a vendor assertion.
const (
	MaxAssertionBytes      = 16 << 10
	maxAssertionsPerReport = 4
	assertionLeeway        = time.Minute
)

// IgnoredAssertion is a vendor assertion a report carried that was not
// used, and why (also logged).
type IgnoredAssertion struct {
	Vendor string `json:"vendor,omitempty"`
	Reason string `json:"reason"`
}

// verifyAssertion checks a vendor assertion for the device rec and
// returns its facts, or why it is ignored.
func (inv *Inventory) verifyAssertion(ctx context.Context, raw string, rec *Record) ([]Fact, *IgnoredAssertion) {
	if len(raw) > MaxAssertionBytes {
		return nil, &IgnoredAssertion{Reason: fmt.Sprintf("larger than %d bytes", MaxAssertionBytes)}
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, &IgnoredAssertion{Reason: err.Error()}
	}
	v := inv.vendors[iss]
	if v == nil {
		return nil, &IgnoredAssertion{Reason: fmt.Sprintf("no vendor is configured for issuer %q", truncate(iss, 80))}
	}
	ignored := func(format string, args ...any) ([]Fact, *IgnoredAssertion) {
		return nil, &IgnoredAssertion{Vendor: v.Name, Reason: fmt.Sprintf(format, args...)}
	}
	payload, err := v.Keys.VerifySignature(ctx, raw)
	if err != nil {
		return ignored("signature: %v", err)
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return ignored("claims: %v", err)
	}
	now := inv.cfg.Now()
	at, exp, err := checkTimes(claims, now)
	if err != nil {
		return ignored("%v", err)
	}
	if s, _ := claims["iss"].(string); s != v.Issuer {
		return ignored("iss is not %q", v.Issuer)
	}
	if v.Audience != "" && !hasAudience(claims["aud"], v.Audience) {
		return ignored("aud does not contain %q", v.Audience)
	}
	bound, _ := lookupClaim(claims, v.DeviceClaim).(string)
	if bound == "" || (bound != rec.ID && bound != SPIFFEID(inv.cfg.TrustDomain, rec.ID)) {
		return ignored("bound to another device (%s %q)", v.DeviceClaim, truncate(bound, 80))
	}
	facts, err := v.facts(claims, at, exp)
	if err != nil {
		return ignored("%v", err)
	}
	return facts, nil
}

// facts reads the score and fact claims.
func (v *Vendor) facts(claims map[string]any, at, exp time.Time) ([]Fact, error) {
	source := SourceVendorPrefix + v.Name
	var out []Fact
	if v.ScoreClaim != "" {
		n, ok := lookupClaim(claims, v.ScoreClaim).(json.Number)
		f, err := n.Float64()
		if !ok || err != nil || f < 0 || f > 100 || f != math.Trunc(f) {
			return nil, fmt.Errorf("%s is not an integer score from 0 to 100", v.ScoreClaim)
		}
		out = append(out, Fact{Name: identity.FactScore, Value: encodeFact(int(f)), Source: source, At: at, Expires: exp})
	}
	for name, path := range v.FactClaims {
		raw := lookupClaim(claims, path)
		if raw == nil {
			out = append(out, Fact{Name: name, Unknown: true, Source: source, At: at, Expires: exp})
			continue
		}
		value, err := factFromJSON(name, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Fact{Name: name, Value: value, Source: source, At: at, Expires: exp})
	}
	return out, nil
}

// unverifiedIssuer reads iss from a compact JWS without verifying it, to
// pick the vendor whose keys then verify it.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("not a compact JWS: payload is not base64url")
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" {
		return "", errors.New("the payload has no iss")
	}
	return c.Iss, nil
}

// decodeClaims decodes a JSON object keeping numbers exact.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return claims, nil
}

// checkTimes requires exp in the future and nbf/iat not in the future
// (within assertionLeeway); it returns when the facts were stated (iat,
// else now) and exp.
func checkTimes(claims map[string]any, now time.Time) (at, exp time.Time, err error) {
	num := func(name string) (time.Time, bool, error) {
		v, present := claims[name]
		if !present {
			return time.Time{}, false, nil
		}
		n, ok := v.(json.Number)
		sec, convErr := n.Int64()
		if !ok || convErr != nil {
			return time.Time{}, true, fmt.Errorf("%s is not a NumericDate", name)
		}
		return time.Unix(sec, 0), true, nil
	}
	exp, ok, err := num("exp")
	switch {
	case err != nil:
		return at, exp, err
	case !ok:
		return at, exp, errors.New("no exp: assertions without an expiry are not accepted")
	case !now.Before(exp.Add(assertionLeeway)):
		return at, exp, fmt.Errorf("expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok, err := num("nbf"); err != nil || ok && nbf.After(now.Add(assertionLeeway)) {
		return at, exp, errors.Join(err, errors.New("not valid yet (nbf)"))
	}
	iat, ok, err := num("iat")
	switch {
	case err != nil:
		return at, exp, err
	case ok && iat.After(now.Add(assertionLeeway)):
		return at, exp, errors.New("issued in the future (iat)")
	case ok && iat.Before(now):
		return iat, exp, nil
	}
	return now, exp, nil
}

// hasAudience reports whether aud (a string or an array of strings)
// contains want.
func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// lookupClaim follows a dotted path through nested objects; nil when any
// step is missing.
func lookupClaim(claims map[string]any, path string) any {
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
