package op

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of the short-lived records that the user does not configure.
const (
	authRequestTTL = 15 * time.Minute // from authorize to code redemption
	codeTTL        = 2 * time.Minute  // from code issue to redemption
)

// storage is the provider's in-memory state behind the library's
// op.Storage interface. It is written for this package rather than taken
// from the library's example/server/storage, which hard-codes its client
// settings (login URL, no post-logout redirect URIs, fixed lifetimes, no
// custom scopes), has no way to add a groups claim, and registers an extra
// client-credentials service account that a demo should not carry.
type storage struct {
	users      map[string]*User // by Sub
	byUsername map[string]*User
	clients    map[string]*client
	key        *signingKey
	accessTTL  time.Duration
	refreshTTL time.Duration
	now        func() time.Time

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]codeEntry // code → request
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
}

// codeEntry ties an issued authorization code to its request.
type codeEntry struct {
	requestID string
	issued    time.Time
}

var (
	_ zop.Storage                   = (*storage)(nil)
	_ zop.CanSetUserinfoFromRequest = (*storage)(nil)
)

// errNotFound is returned for unknown requests, codes and tokens.
var errNotFound = errors.New("not found")

// CreateAuthRequest stores a validated authorization request. It refuses a
// request without a PKCE S256 challenge, since the demo requires PKCE.
// prompt=none is answered later by the login page, from the browser's
// provider session.
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (zop.AuthRequest, error) {
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	req := &authRequest{
		id:            id,
		created:       s.now(),
		clientID:      r.ClientID,
		redirectURI:   r.RedirectURI,
		state:         r.State,
		nonce:         r.Nonce,
		scopes:        r.Scopes,
		responseType:  r.ResponseType,
		responseMode:  r.ResponseMode,
		prompt:        r.Prompt,
		maxAge:        r.MaxAge,
		loginHint:     r.LoginHint,
		codeChallenge: &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.requests[id] = req
	cp := *req
	return &cp, nil
}

// AuthRequestByID returns a stored, unexpired authorization request.
func (s *storage) AuthRequestByID(_ context.Context, id string) (zop.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok || s.now().Sub(req.created) > authRequestTTL {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	cp := *req // a copy, so the login page's later update races with nothing
	return &cp, nil
}

// request returns a copy of a stored, unexpired request for the login page.
func (s *storage) request(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok || s.now().Sub(req.created) > authRequestTTL {
		return nil, false
	}
	cp := *req
	return &cp, true
}

// completeRequest marks a request as signed in by userID at authTime; it
// refuses a request that is already complete.
func (s *storage) completeRequest(id, userID string, authTime time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	if req.done {
		// Once signed in, a request's subject never changes: a code may
		// already have been issued for it.
		return errors.New("auth request already completed")
	}
	req.userID, req.authTime, req.done = userID, authTime, true
	return nil
}

// AuthRequestByCode returns the request behind a code. A code works once:
// it is forgotten at the first look-up, so a failed exchange (a wrong PKCE
// verifier, say) burns it.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (zop.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entry, ok := s.codes[code]
	delete(s.codes, code)
	if !ok || s.now().Sub(entry.issued) > codeTTL {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	req, ok := s.requests[entry.requestID]
	if !ok || !req.done {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	cp := *req
	return &cp, nil
}

// SaveAuthCode records the code issued for a request. Only one code is ever
// issued per request, so replaying the callback URL yields nothing.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[id]; !ok {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	for _, e := range s.codes {
		if e.requestID == id {
			return errors.New("a code was already issued for this request")
		}
	}
	s.codes[code] = codeEntry{requestID: id, issued: s.now()}
	return nil
}

// DeleteAuthRequest forgets a request and any code issued for it.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteRequestLocked(id)
	return nil
}

func (s *storage) deleteRequestLocked(id string) {
	delete(s.requests, id)
	for code, e := range s.codes {
		if e.requestID == id {
			delete(s.codes, code)
		}
	}
}

// sweepLocked drops expired requests, codes and tokens so that a long-running
// demo does not grow without bound.
func (s *storage) sweepLocked() {
	now := s.now()
	for id, r := range s.requests {
		if now.Sub(r.created) > authRequestTTL {
			s.deleteRequestLocked(id)
		}
	}
	for id, t := range s.access {
		if now.After(t.expires) {
			delete(s.access, id)
		}
	}
	for id, t := range s.refresh {
		if now.After(t.expires) {
			delete(s.refresh, id)
		}
	}
}

// CreateAccessToken stores an access token for a code exchange without
// offline_access.
func (s *storage) CreateAccessToken(_ context.Context, req zop.TokenRequest) (string, time.Time, error) {
	clientID, _, _ := requestInfo(req)
	if clientID == "" {
		return "", time.Time{}, errors.New("unsupported token request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.newAccessLocked(clientID, req.GetSubject(), req.GetScopes())
	if err != nil {
		return "", time.Time{}, err
	}
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens stores an access token and a refresh token.
// With a current refresh token (the refresh_token grant) that token is
// rotated: it stops working and its access token is revoked.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	clientID, authTime, amr := requestInfo(req)
	if clientID == "" {
		return "", "", time.Time{}, errors.New("unsupported token request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		old, ok := s.refresh[current]
		if !ok || s.now().After(old.expires) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token invalid or expired")
		}
		delete(s.refresh, current)
		delete(s.access, old.accessID)
	}
	at, err := s.newAccessLocked(clientID, req.GetSubject(), req.GetScopes())
	if err != nil {
		return "", "", time.Time{}, err
	}
	rid, err := randomID()
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.refresh[rid] = &refreshToken{
		id: rid, clientID: clientID, userID: req.GetSubject(), scopes: req.GetScopes(),
		amr: amr, authTime: authTime, expires: s.now().Add(s.refreshTTL), accessID: at.id,
	}
	return at.id, rid, at.expires, nil
}

func (s *storage) newAccessLocked(clientID, userID string, scopes []string) (*accessToken, error) {
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	t := &accessToken{id: id, clientID: clientID, userID: userID, scopes: scopes, expires: s.now().Add(s.accessTTL)}
	s.access[id] = t
	return t, nil
}

// requestInfo extracts the client, auth time and methods from the request
// kinds this provider issues tokens for.
func requestInfo(req zop.TokenRequest) (clientID string, authTime time.Time, amr []string) {
	switch r := req.(type) {
	case *authRequest:
		return r.clientID, r.authTime, r.GetAMR()
	case *refreshRequest:
		return r.token.clientID, r.token.authTime, r.token.amr
	}
	return "", time.Time{}, nil
}

// TokenRequestByRefreshToken looks up an unexpired refresh token.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (zop.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[token]
	if !ok || s.now().After(t.expires) {
		return nil, fmt.Errorf("refresh token: %w", errNotFound)
	}
	if _, ok := s.users[t.userID]; !ok {
		return nil, fmt.Errorf("user: %w", errNotFound)
	}
	return &refreshRequest{token: *t, scopes: t.scopes}, nil
}

// TerminateSession revokes the user's tokens for a client (or for every
// client when clientID is empty) at RP-initiated logout.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	if userID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(userID, clientID)
	return nil
}

// revokeLocked removes every token of userID, limited to clientID if set.
func (s *storage) revokeLocked(userID, clientID string) {
	for id, t := range s.access {
		if t.userID == userID && (clientID == "" || t.clientID == clientID) {
			delete(s.access, id)
		}
	}
	for id, t := range s.refresh {
		if t.userID == userID && (clientID == "" || t.clientID == clientID) {
			delete(s.refresh, id)
		}
	}
}

// GetRefreshTokenInfo maps a refresh token to its user and id (the same
// opaque value) for revocation.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[token]
	if !ok || t.clientID != clientID {
		return "", "", zop.ErrInvalidRefreshToken
	}
	return t.userID, t.id, nil
}

// RevokeToken revokes an access token (by id) or a refresh token, if it
// belongs to the calling client; unknown tokens are ignored per RFC 7009.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.access, tokenOrID)
		return nil
	}
	if t, ok := s.refresh[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refresh, tokenOrID)
		delete(s.access, t.accessID)
	}
	return nil
}

// SigningKey returns the provider's RSA signing key.
func (s *storage) SigningKey(context.Context) (zop.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms returns RS256, the only algorithm used.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet returns the public key published at the JWKS endpoint.
func (s *storage) KeySet(context.Context) ([]zop.Key, error) {
	return []zop.Key{publicKey{s.key}}, nil
}

// GetClientByClientID returns a registered client; unknown ids are a plain
// error, which the library answers as a client error.
func (s *storage) GetClientByClientID(_ context.Context, id string) (zop.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a client secret in constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.cfg.Secret), []byte(secret)) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated by the library; SetUserinfoFromRequest
// does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken fills the userinfo response for an access token.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || s.now().After(t.expires) || t.userID != subject {
		return errors.New("access token invalid or expired")
	}
	return s.setUserinfo(info, t.userID, t.scopes)
}

// SetIntrospectionFromToken answers token introspection for the client the
// token was issued to.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || s.now().After(t.expires) || t.userID != subject || t.clientID != clientID {
		return errors.New("token inactive")
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, t.userID, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

// GetPrivateClaimsFromScopes adds the groups claim to JWT access tokens.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	u, ok := s.users[userID]
	if !ok {
		return nil, fmt.Errorf("user: %w", errNotFound)
	}
	return map[string]any{"groups": groupsOf(u)}, nil
}

// GetKeyByIDAndClientID is for the JWT profile grant, which the demo does
// not support.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grant not supported")
}

// ValidateJWTProfileScopes is for the JWT profile grant, which the demo
// does not support.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant not supported")
}

// Health reports the in-memory storage as always healthy.
func (s *storage) Health(context.Context) error { return nil }

// setUserinfo fills standard claims by scope, and groups always.
func (s *storage) setUserinfo(info *oidc.UserInfo, userID string, scopes []string) error {
	u, ok := s.users[userID]
	if !ok {
		return fmt.Errorf("user: %w", errNotFound)
	}
	// The subject is always set: the library copies it into the ID token.
	info.Subject = u.Sub
	if hasScope(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(true)
	}
	if hasScope(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.Username
	}
	info.AppendClaims("groups", groupsOf(u))
	return nil
}

// groupsOf returns the user's groups, never nil, so the claim is always an
// array.
func groupsOf(u *User) []string {
	if u.Groups == nil {
		return []string{}
	}
	return u.Groups
}
