package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"time"

	"golang.org/x/sync/singleflight"

	"ztproxy/identity"
)

// Results of a userinfo lookup, as reported to UserinfoEvents.
const (
	UserinfoOK       = "ok"
	UserinfoError    = "error"
	UserinfoRefused  = "refused"
	UserinfoMismatch = "mismatch"
)

// Client-facing descriptions of userinfo failures (BearerError.Description).
const (
	descUserinfoMismatch    = "userinfo is for another subject"
	descUserinfoRefused     = "token was refused by the identity provider's userinfo endpoint"
	descUserinfoUnavailable = "identity provider userinfo unavailable"
)

// UserinfoEvents receives the result of every userinfo request (never a
// cache hit), for metrics. idp is a configured name.
type UserinfoEvents func(idp, result string)

// userinfoEnricher adds the userinfo claims a bearer token lacks to its
// principal. Lookups are cached per subject (issuer#sub), so a new token
// of a known subject costs no IdP call, and a verified token that is
// already in the token cache costs nothing at all: the enriched principal
// is what the token cache holds.
type userinfoEnricher struct {
	cfg    UserinfoConfig
	idp    string
	expose []string
	client *http.Client
	now    func() time.Time
	logger *slog.Logger
	events UserinfoEvents

	cache *boundedCache[userinfoEntry]
	group singleflight.Group
}

// userinfoEntry is one subject's lookup; immutable once cached.
type userinfoEntry struct {
	info  userinfoClaims
	err   *BearerError // the failure; nil on success
	until time.Time
}

// userinfoClaims are what enrichment may add to a principal.
type userinfoClaims struct {
	email         string
	emailVerified bool
	name          string
	username      string
	claims        map[string]string
}

func newUserinfoEnricher(cfg IdPConfig, bc *BearerConfig) *userinfoEnricher {
	uc := *cfg.Userinfo
	return &userinfoEnricher{
		cfg: uc, idp: cfg.Name, expose: cfg.ClaimsToExpose, client: bc.HTTPClient, now: bc.Now,
		logger: bc.Logger, events: bc.UserinfoEvents,
		cache: newBoundedCache(uc.CacheSize, func(e *userinfoEntry) time.Time { return e.until }),
	}
}

// enrich completes p, a user verified from raw, with its subject's
// userinfo, fetched from endpoint unless cached. It returns when the
// enriched principal must be looked up again (the cached lookup's end), or
// a refusal: a userinfo document for another subject always, any other
// failure with OnFailure "deny".
func (e *userinfoEnricher) enrich(ctx context.Context, raw, endpoint string, p *identity.Principal) (time.Time, *BearerError) {
	if p.Kind != identity.KindUser {
		return time.Time{}, nil // a client-credentials token has no user to look up
	}
	key := hashToken(p.ID)
	ent := e.cache.get(&key)
	if ent == nil || !e.now().Before(ent.until) {
		var err error
		if ent, err = e.lookup(ctx, &key, raw, endpoint, p.Subject); err != nil {
			return time.Time{}, invalidToken(descUserinfoUnavailable, err)
		}
	}
	if ent.err != nil {
		if ent.err.Description == descUserinfoMismatch || e.cfg.OnFailure == UserinfoDeny {
			return time.Time{}, ent.err
		}
		return ent.until, nil // proceed without the userinfo claims until the retry
	}
	ent.info.applyTo(p)
	return ent.until, nil
}

// lookup fetches the subject's userinfo once for all concurrent callers
// and caches the result, a failure for userinfoRetryAfter. The request is
// not cancelled by the caller that started it; a caller whose ctx ends
// stops waiting.
func (e *userinfoEnricher) lookup(ctx context.Context, key *tokenKey, raw, endpoint, sub string) (*userinfoEntry, error) {
	ch := e.group.DoChan(string(key[:]), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
		defer cancel()
		info, berr := e.fetch(fctx, raw, endpoint, sub)
		now := e.now()
		ent := &userinfoEntry{info: info, err: berr, until: now.Add(e.cfg.CacheTTL)}
		result := UserinfoOK
		if berr != nil {
			ent.until = now.Add(min(userinfoRetryAfter, e.cfg.CacheTTL))
			result = userinfoResult(berr)
			e.logger.Warn("authn: userinfo lookup failed", "idp", e.idp, "sub", sub, "result", result,
				"on_failure", e.cfg.OnFailure, "error", berr.Err)
		}
		if e.events != nil {
			e.events(e.idp, result)
		}
		e.cache.put(key, ent, now)
		return ent, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		return res.Val.(*userinfoEntry), nil
	}
}

func userinfoResult(err *BearerError) string {
	switch err.Description {
	case descUserinfoMismatch:
		return UserinfoMismatch
	case descUserinfoRefused:
		return UserinfoRefused
	}
	return UserinfoError
}

// fetch calls the userinfo endpoint with the token, through the hardened
// IdP client (no redirects, at most MaxIdPResponseBytes, https except
// loopback), and checks that the answer is about sub.
func (e *userinfoEnricher) fetch(ctx context.Context, raw, endpoint, sub string) (userinfoClaims, *BearerError) {
	unavailable := func(err error) (userinfoClaims, *BearerError) {
		return userinfoClaims{}, invalidToken(descUserinfoUnavailable, fmt.Errorf("userinfo: %w", err))
	}
	if endpoint == "" {
		return unavailable(errors.New("the discovery document names no userinfo_endpoint; set userinfo.url"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return unavailable(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return unavailable(err) // the URL is not in the error's text: url.Error has it, but no token
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return userinfoClaims{}, invalidToken(descUserinfoRefused, fmt.Errorf("userinfo answered %s (%s)",
			resp.Status, sanitizeText(resp.Header.Get("WWW-Authenticate"))))
	case resp.StatusCode != http.StatusOK:
		return unavailable(fmt.Errorf("answered %s", resp.Status))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return unavailable(fmt.Errorf("content type %q, want application/json (signed or encrypted userinfo is not supported)",
			sanitizeText(resp.Header.Get("Content-Type"))))
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return unavailable(err)
	}
	info, gotSub, err := parseUserinfo(body, e.expose, e.idp, e.logger)
	if err != nil {
		return unavailable(err)
	}
	if gotSub != sub {
		return userinfoClaims{}, invalidToken(descUserinfoMismatch,
			fmt.Errorf("userinfo sub %q differs from the token's sub %q", sanitizeText(gotSub), sub))
	}
	return info, nil
}

// parseUserinfo reads a userinfo document: a JSON object with a string
// sub. Its email is held to the rules of a token's (one plain address).
func parseUserinfo(body []byte, expose []string, idpName string, logger *slog.Logger) (userinfoClaims, string, error) {
	var c bearerClaims
	var sub struct {
		Sub *string `json:"sub"`
	}
	if err := json.Unmarshal(body, &sub); err != nil {
		return userinfoClaims{}, "", fmt.Errorf("userinfo document: %w", err)
	}
	if sub.Sub == nil || *sub.Sub == "" {
		return userinfoClaims{}, "", errors.New("userinfo document has no sub")
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return userinfoClaims{}, "", fmt.Errorf("userinfo document: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return userinfoClaims{}, "", fmt.Errorf("userinfo document: %w", err)
	}
	verified, err := jsonBool(c.EmailVerified)
	if err != nil {
		return userinfoClaims{}, "", fmt.Errorf("userinfo email_verified: %w", err)
	}
	info := userinfoClaims{
		email: acceptedEmail(c.Email, idpName, *sub.Sub, logger), emailVerified: verified,
		name: c.Name, username: c.username(), claims: exposedClaims(raw, expose),
	}
	if info.email == "" {
		info.emailVerified = false
	}
	return info, *sub.Sub, nil
}

// applyTo adds to p what its token did not say: the token's own claims,
// signed by the IdP, always win. email and email_verified travel together.
func (u *userinfoClaims) applyTo(p *identity.Principal) {
	if p.Email == "" && u.email != "" {
		p.Email, p.EmailVerified = u.email, u.emailVerified
	}
	if p.Name == "" {
		p.Name = u.name
	}
	if p.Username == "" {
		p.Username = u.username
	}
	var merged map[string]string
	for name, v := range u.claims {
		if _, ok := p.Claims[name]; ok {
			continue
		}
		if merged == nil {
			merged = make(map[string]string, len(p.Claims)+len(u.claims))
			maps.Copy(merged, p.Claims)
		}
		merged[name] = v
	}
	if merged != nil {
		p.Claims = merged // never written to: u.claims is shared by every principal of the subject
	}
}
