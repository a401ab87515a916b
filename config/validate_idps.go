package config

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"time"

	"ztproxy/authn"
)

// MinSecretBytes is the shortest session secret accepted, after
// DecodeSecret.
const MinSecretBytes = 32

// Assertion lifetimes accepted by assertion.ttl: long enough for a slow
// upstream hop, short enough that a leaked assertion is soon useless.
const (
	MinAssertionTTL = 10 * time.Second
	MaxAssertionTTL = 10 * time.Minute
)

// reservedAuthParams are set by the sign-in flow itself; letting
// extra_auth_params override them would break or weaken it (state, nonce
// and PKCE are the CSRF and replay defences).
var reservedAuthParams = []string{
	"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "response_mode",
}

// DecodeSecret returns the key bytes of a session secret: the decoded
// bytes when s is standard or URL-safe base64 (padded or not) of at least
// MinSecretBytes bytes, otherwise the bytes of s itself.
func DecodeSecret(s string) []byte {
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil && len(key) >= MinSecretBytes {
			return key
		}
	}
	return []byte(s)
}

func (f *File) checkIdPs(c *collector) {
	names := map[string]int{}
	bearerIssuers := map[string]int{}
	for i := range f.IdPs {
		idp := &f.IdPs[i]
		path := indexPath("idps", i)
		checkName(c, path+".name", idp.Name, idpNamePattern, "[a-z0-9-]+", names, indexPath("idps", names[idp.Name]))
		if _, seen := names[idp.Name]; !seen && idp.Name != "" {
			names[idp.Name] = i
		}
		if idp.Issuer == "" {
			c.add(path+".issuer", "required")
		} else if _, msg := checkURL(idp.Issuer, urlRules{secure: true, noQuery: true}); msg != "" {
			c.add(path+".issuer", "%s", msg)
		} else if len(idp.Audiences) > 0 {
			// Bearer tokens are matched to an IdP by issuer: two entries
			// with one issuer would be ambiguous.
			if first, dup := bearerIssuers[idp.Issuer]; dup {
				c.add(path+".issuer", "same issuer as idps[%d]; list all audiences in one entry", first)
			} else {
				bearerIssuers[idp.Issuer] = i
			}
		}
		checkOptionalURL(c, path+".jwks_url", idp.JWKSURL)
		checkOptionalURL(c, path+".logout_url", idp.LogoutURL)
		checkNonEmpty(c, path+".audiences", idp.Audiences)
		checkNonEmpty(c, path+".claims", idp.Claims)
		checkNonEmpty(c, path+".scopes", idp.Scopes)
		if idp.GroupsClaim == "" {
			c.add(path+".groups_claim", "required (the default is groups)")
		}
		switch idp.TokenUse {
		case "", "id", "access":
		default:
			c.add(path+".token_use", "must be empty, id or access, not %q", idp.TokenUse)
		}
		f.checkClientSecret(c, path, idp)
		if idp.ResolvedClientSecret != "" && idp.ClientID == "" {
			c.add(path+".client_id", "required when client_secret is set")
		}
		if idp.ClientID != "" && !slices.Contains(idp.Scopes, "openid") {
			c.add(path+".scopes", "must include openid for browser sign-in")
		}
		for _, key := range sortedKeys(idp.ExtraAuthParams) {
			if slices.Contains(reservedAuthParams, key) {
				c.add(path+".extra_auth_params."+key, "reserved: ztproxy sets this parameter itself")
			}
		}
		checkKeyRefresh(c, path, idp.JWKSRefreshInterval, idp.JWKSMinRefetchInterval, idp.JWKSMaxStale)
		checkUserinfo(c, path, idp)
		if idp.ClientID != "" && idp.LogoutURL == "" && cognitoIssuer.MatchString(idp.Issuer) {
			// Issue 21.3: Cognito's end_session_endpoint (/logout) wants
			// logout_uri, not post_logout_redirect_uri.
			c.warn(path+".logout_url", "not set: Amazon Cognito's end_session_endpoint ignores post_logout_redirect_uri, so users would not come back to %s; set logout_url to https://<domain>/logout?client_id=%s&logout_uri=<external_url>%s (docs/cognito.md)",
				authn.SignedOutPath, idp.ClientID, authn.SignedOutPath)
		}
		if idp.StepUp != nil {
			if idp.StepUp.MaxAge < 0 {
				c.add(path+".step_up.max_age", "must not be negative")
			}
			if idp.StepUp.ACRValues == "" && idp.StepUp.MaxAge == 0 {
				c.add(path+".step_up", "set acr_values, max_age or both")
			}
		}
	}
}

// cognitoIssuer matches an Amazon Cognito user pool's issuer.
var cognitoIssuer = regexp.MustCompile(`^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9-]+_[A-Za-z0-9]+$`)

// checkUserinfo checks an IdP's userinfo block, if any.
func checkUserinfo(c *collector, path string, idp *IdP) {
	u := idp.Userinfo
	if u == nil {
		return
	}
	path += ".userinfo"
	if len(idp.Audiences) == 0 {
		c.add(path, "enriches bearer tokens: set audiences too")
	}
	checkOptionalURL(c, path+".url", u.URL)
	if u.URL == "" && idp.JWKSURL != "" {
		c.add(path+".url", "required with jwks_url (no discovery document names the userinfo endpoint)")
	}
	if u.CacheTTL < time.Second || u.CacheTTL > authn.MaxUserinfoCacheTTL {
		c.add(path+".cache_ttl", "must be between 1s and %s, not %s", authn.MaxUserinfoCacheTTL, u.CacheTTL)
	}
	if u.CacheSize < 1 {
		c.add(path+".cache_size", "must be at least 1, not %d", u.CacheSize)
	}
	if u.Timeout <= 0 || u.Timeout > authn.MaxUserinfoTimeout {
		c.add(path+".timeout", "must be greater than 0 and at most %s, not %s", authn.MaxUserinfoTimeout, u.Timeout)
	}
	if u.OnFailure != authn.UserinfoDeny && u.OnFailure != authn.UserinfoProceed {
		c.add(path+".on_failure", "must be deny or proceed, not %q", u.OnFailure)
	}
}

// checkKeyRefresh checks the key-refresh settings of an IdP or of the
// trusted assertion keys under path.
func checkKeyRefresh(c *collector, path string, interval, minRefetch, maxStale time.Duration) {
	if interval < authn.MinJWKSInterval || interval > authn.MaxJWKSInterval {
		c.add(path+".jwks_refresh_interval", "must be between %s and %s, not %s", authn.MinJWKSInterval, authn.MaxJWKSInterval, interval)
	}
	if minRefetch < authn.MinJWKSInterval || (interval > 0 && minRefetch > interval) {
		c.add(path+".jwks_min_refetch_interval", "must be between %s and jwks_refresh_interval (%s), not %s", authn.MinJWKSInterval, interval, minRefetch)
	}
	if maxStale <= 0 || maxStale > authn.MaxJWKSMaxStaleness {
		c.add(path+".jwks_max_stale", "must be greater than 0 and at most %s, not %s", authn.MaxJWKSMaxStaleness, maxStale)
	}
}

// checkOptionalURL checks an https URL that may be left empty.
func checkOptionalURL(c *collector, path, raw string) {
	if raw == "" {
		return
	}
	if _, msg := checkURL(raw, urlRules{secure: true}); msg != "" {
		c.add(path, "%s", msg)
	}
}

// checkNonEmpty reports empty entries of a list of strings.
func checkNonEmpty(c *collector, path string, values []string) {
	for i, v := range values {
		if strings.TrimSpace(v) == "" {
			c.add(indexPath(path, i), "must not be empty")
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (f *File) checkSession(c *collector) {
	s := &f.Session
	browserRoute := ""
	for _, r := range f.Routes {
		if r.Auth == AuthBrowser {
			browserRoute = r.Name
			break
		}
	}
	if s.CookieName == "" {
		c.add("session.cookie_name", "required")
	} else if !isCookieToken(s.CookieName) {
		c.add("session.cookie_name", "%q is not a valid cookie name", s.CookieName)
	}
	if s.CookieDomain != "" {
		f.checkCookieDomain(c)
	}
	f.checkBrowserRouteHosts(c)
	if s.Lifetime <= 0 {
		c.add("session.lifetime", "must be greater than 0")
	}
	if s.IdleTimeout <= 0 {
		c.add("session.idle_timeout", "must be greater than 0")
	} else if s.Lifetime > 0 && s.IdleTimeout > s.Lifetime {
		c.add("session.idle_timeout", "must not exceed lifetime (%s)", s.Lifetime)
	}
	if len(s.Secrets) == 0 && s.SecretsFile == "" && f.hasBrowserRoute() {
		c.add("session.secrets", "required (or secrets_file): route %q uses auth browser", browserRoute)
	}
	s.SecretKeys = nil
	for _, secret := range f.sessionSecrets(c) {
		key := DecodeSecret(secret.value)
		if len(key) < MinSecretBytes {
			// Never show the secret; its length is enough to act on.
			c.add(secret.path, "%smust be at least %d bytes (got %d); generate one with: openssl rand -base64 32", secret.where, MinSecretBytes, len(key))
			continue
		}
		s.SecretKeys = append(s.SecretKeys, key)
	}
}

func (f *File) hasBrowserRoute() bool {
	for _, r := range f.Routes {
		if r.Auth == AuthBrowser {
			return true
		}
	}
	return false
}

// checkCookieDomain checks that the cookie domain is a host name that
// browsers will accept from the external URL's host.
func (f *File) checkCookieDomain(c *collector) {
	s := &f.Session
	domain := strings.ToLower(strings.TrimPrefix(s.CookieDomain, "."))
	if err := checkHostName(domain); err != nil {
		c.add("session.cookie_domain", "%q: %v", s.CookieDomain, err)
		return
	}
	if strings.HasPrefix(s.CookieName, "__Host-") {
		c.add("session.cookie_domain", "must be empty when cookie_name starts with __Host-")
		return
	}
	u, msg := checkURL(f.ExternalURL, urlRules{secure: true})
	if msg != "" {
		return // Reported at external_url.
	}
	if host := strings.ToLower(u.Hostname()); host != domain && !strings.HasSuffix(host, "."+domain) {
		c.add("session.cookie_domain", "%q does not contain the external_url host %q, so browsers would refuse the cookie", s.CookieDomain, host)
	}
}

// checkBrowserRouteHosts requires every browser route to be reachable by
// the session cookie: sign-in happens on the external_url host, so a route
// on another host needs session.cookie_domain to cover both.
func (f *File) checkBrowserRouteHosts(c *collector) {
	u, msg := checkURL(f.ExternalURL, urlRules{secure: true})
	if msg != "" {
		return
	}
	external := strings.ToLower(u.Hostname())
	domain := strings.ToLower(strings.TrimPrefix(f.Session.CookieDomain, "."))
	for i, r := range f.Routes {
		if r.Auth != AuthBrowser {
			continue
		}
		host := strings.TrimPrefix(hostOnly(r.Host), "*.")
		if host == external {
			continue
		}
		if domain != "" && (host == domain || strings.HasSuffix(host, "."+domain)) {
			continue
		}
		c.add(indexPath("routes", i)+".host", "browser route host %q differs from the external_url host %q: set session.cookie_domain to a parent domain of both", r.Host, external)
	}
}

// hostOnly drops a port from a canonical route host.
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end >= 0 {
			return host[:end+1]
		}
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[:i], ":") {
		return host[:i]
	}
	return host
}

// isCookieToken reports whether name is an RFC 6265 cookie name.
func isCookieToken(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (f *File) checkAssertion(c *collector) {
	a := &f.Assertion
	if f.checkFile(c, "assertion.signing_key_file", &a.SigningKeyFile) {
		checkSigningKey(c, "assertion.signing_key_file", a.SigningKeyFile)
		warnWorldReadableFile(c, "assertion.signing_key_file", a.SigningKeyFile)
	}
	f.checkRotationKeys(c)
	if a.TTL < MinAssertionTTL || a.TTL > MaxAssertionTTL {
		c.add("assertion.ttl", "must be between %s and %s, not %s", MinAssertionTTL, MaxAssertionTTL, a.TTL)
	}
	for i := range a.TrustedJWKS {
		path := indexPath("assertion.trusted_jwks", i)
		source := &a.TrustedJWKS[i]
		switch {
		case *source == "":
			c.add(path, "must not be empty")
		case strings.HasPrefix(*source, "https://") || strings.HasPrefix(*source, "http://"):
			checkOptionalURL(c, path, *source)
		default:
			f.checkFile(c, path, source)
		}
	}
	checkKeyRefresh(c, "assertion", a.JWKSRefreshInterval, a.JWKSMinRefetchInterval, a.JWKSMaxStale)
	if f.Mode == ModeSidecar && len(a.TrustedJWKS) == 0 && !f.anyIdPHasAudiences() {
		c.add("assertion.trusted_jwks", "required in sidecar mode unless an idp has audiences: nothing could authenticate a request")
	}
}
