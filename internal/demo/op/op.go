// Package op is the embedded development OpenID provider behind
// `ztproxy demo`. It is NOT for production: it keeps everything in memory,
// generates a fresh signing key at every start, stores plain-text demo
// passwords, and listens only on a loopback address over plain HTTP.
//
// The protocol is the certified-library kind, not hand-rolled: discovery,
// the authorization code flow, PKCE, the token, userinfo, JWKS,
// introspection, revocation and end-session endpoints all come from
// github.com/zitadel/oidc/v3/pkg/op. This package supplies the storage,
// the login page and the loopback listener, so that the proxy talks to it
// over HTTP exactly as it would to Cognito.
package op

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// Default lifetimes for tokens and the provider's browser session.
const (
	DefaultAccessTokenTTL  = 10 * time.Minute
	DefaultIDTokenTTL      = 10 * time.Minute
	DefaultRefreshTokenTTL = 8 * time.Hour
	DefaultSessionTTL      = 8 * time.Hour
)

// User is a demo account. Sub is the stable subject; Username and Password
// are what the person types on the login page.
type User struct {
	Sub, Username, Email, Name, Password string
	Groups                               []string
}

// Client is a registered relying party: a confidential web client that
// authenticates to the token endpoint with its secret (client_secret_basic
// or client_secret_post). Redirect URIs are matched exactly.
type Client struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, receives an OpenID Connect
	// Back-Channel Logout token when the user signs out everywhere on the
	// provider's account page.
	BackchannelLogoutURI string
}

// Config configures Start. Zero durations take the defaults above.
type Config struct {
	// Addr is a loopback host:port, such as "127.0.0.1:0"; "localhost"
	// means 127.0.0.1. Any other address is refused.
	Addr    string
	Users   []User
	Clients []Client

	AccessTokenTTL  time.Duration // default 10m
	IDTokenTTL      time.Duration // default 10m
	RefreshTokenTTL time.Duration // default 8h
	SessionTTL      time.Duration // the provider's own sign-in session; default 8h
	// BackchannelClient sends back-channel logout tokens (it must trust
	// the clients' certificates); a 5 s client without redirects when nil.
	BackchannelClient *http.Client
}

// Provider is a running development OpenID provider.
type Provider struct {
	// Issuer is the issuer identifier, "http://127.0.0.1:PORT" with no
	// trailing slash; discovery lives under it.
	Issuer string

	srv      *http.Server
	store    *storage
	sessions *sessions
	done     chan struct{}
	once     sync.Once
}

// Start validates cfg, listens on its loopback address and serves the
// provider until Close.
func Start(cfg Config) (*Provider, error) {
	addr, err := loopbackAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)

	// The RSA key takes the longest to make; make it while the rest is set up.
	type keyResult struct {
		key *rsa.PrivateKey
		err error
	}
	keyc := make(chan keyResult, 1)
	go func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		keyc <- keyResult{k, err}
	}()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		<-keyc
		return nil, fmt.Errorf("demo OP: listen: %w", err)
	}
	issuer := "http://" + ln.Addr().String()

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		ln.Close()
		<-keyc
		return nil, err
	}
	kid, err := randomID()
	if err != nil {
		ln.Close()
		<-keyc
		return nil, err
	}
	kr := <-keyc
	if kr.err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo OP: signing key: %w", kr.err)
	}

	st := newStorage(cfg, &signingKey{id: kid, key: kr.key})
	provider, err := zop.NewProvider(&zop.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile, scopeGroups, oidc.ScopeOfflineAccess,
		},
		SupportedClaims: append(append([]string(nil), zop.DefaultSupportedClaims...), "groups"),
	}, st, zop.StaticIssuer(issuer), zop.WithAllowInsecure())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo OP: %w", err)
	}

	p := &Provider{
		Issuer:   issuer,
		store:    st,
		sessions: newSessions(cfg.SessionTTL, st.now),
		done:     make(chan struct{}),
	}
	callback := zop.AuthCallbackURL(provider)
	bc := cfg.BackchannelClient
	if bc == nil {
		bc = &http.Client{Timeout: 5 * time.Second}
	}
	noRedirects := *bc
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	lh := &loginHandler{
		store:       st,
		sessions:    p.sessions,
		op:          provider,
		users:       cfg.Users,
		issuer:      issuer,
		backchannel: &noRedirects,
		csrfKey:     cryptoKey,
		callback: func(id string) string {
			return callback(zop.ContextWithIssuer(context.Background(), issuer), id)
		},
	}
	mux := http.NewServeMux()
	mux.Handle(loginPath, lh)
	mux.HandleFunc(accountPath, lh.account)
	mux.HandleFunc(signOutEverywherePath, lh.account)
	mux.HandleFunc(loggedOutPath, lh.loggedOut)
	mux.Handle(provider.EndSessionEndpoint().Relative(), lh.endSession(provider))
	mux.Handle("/", provider)

	p.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// Close stops the provider, waiting briefly for requests in flight.
func (p *Provider) Close() error {
	var err error
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err = p.srv.Shutdown(ctx); err != nil {
			err = p.srv.Close()
		}
		<-p.done
	})
	return err
}

// RevokeUser ends the user's sign-in sessions at the provider and revokes
// every access and refresh token issued to them, so that the next refresh
// fails with invalid_grant. Tests use it to exercise session expiry.
func (p *Provider) RevokeUser(sub string) {
	p.sessions.deleteUser(sub)
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.revokeLocked(sub, "")
}

// loopbackAddr checks that addr is a loopback host:port and returns it,
// with "localhost" turned into 127.0.0.1 so that the issuer is stable.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("demo OP: address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("demo OP: refusing to listen on %q: the development OpenID provider is for loopback addresses only", addr)
	}
	return addr, nil
}

// validate checks that users and clients are complete and unambiguous.
func validate(cfg Config) error {
	var errs []error
	if len(cfg.Users) == 0 {
		errs = append(errs, errors.New("no users"))
	}
	subs, names := map[string]bool{}, map[string]bool{}
	for i, u := range cfg.Users {
		switch {
		case u.Sub == "" || u.Username == "" || u.Password == "":
			errs = append(errs, fmt.Errorf("users[%d]: sub, username and password are required", i))
		case subs[u.Sub]:
			errs = append(errs, fmt.Errorf("users[%d]: duplicate sub %q", i, u.Sub))
		case names[u.Username]:
			errs = append(errs, fmt.Errorf("users[%d]: duplicate username %q", i, u.Username))
		}
		subs[u.Sub], names[u.Username] = true, true
	}
	if len(cfg.Clients) == 0 {
		errs = append(errs, errors.New("no clients"))
	}
	ids := map[string]bool{}
	for i, c := range cfg.Clients {
		if c.ID == "" || c.Secret == "" || len(c.RedirectURIs) == 0 {
			errs = append(errs, fmt.Errorf("clients[%d]: id, secret and at least one redirect URI are required", i))
		}
		if ids[c.ID] {
			errs = append(errs, fmt.Errorf("clients[%d]: duplicate id %q", i, c.ID))
		}
		ids[c.ID] = true
		for _, u := range append(append([]string(nil), c.RedirectURIs...), c.PostLogoutRedirectURIs...) {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.Fragment != "" {
				errs = append(errs, fmt.Errorf("clients[%d]: %q is not an absolute http(s) URI without a fragment", i, u))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("demo OP: %w", err)
	}
	return nil
}

// withDefaults fills zero lifetimes.
func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTokenTTL, DefaultAccessTokenTTL)
	def(&cfg.IDTokenTTL, DefaultIDTokenTTL)
	def(&cfg.RefreshTokenTTL, DefaultRefreshTokenTTL)
	def(&cfg.SessionTTL, DefaultSessionTTL)
	return cfg
}

// newStorage builds the in-memory storage for cfg, copying users and
// clients so that later changes to cfg do not reach the provider.
func newStorage(cfg Config, key *signingKey) *storage {
	st := &storage{
		users:      map[string]*User{},
		byUsername: map[string]*User{},
		clients:    map[string]*client{},
		key:        key,
		accessTTL:  cfg.AccessTokenTTL,
		refreshTTL: cfg.RefreshTokenTTL,
		now:        time.Now,
		requests:   map[string]*authRequest{},
		codes:      map[string]codeEntry{},
		access:     map[string]*accessToken{},
		refresh:    map[string]*refreshToken{},
	}
	for _, u := range cfg.Users {
		u.Groups = append([]string(nil), u.Groups...)
		st.users[u.Sub] = &u
		st.byUsername[u.Username] = &u
	}
	for _, c := range cfg.Clients {
		c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
		c.PostLogoutRedirectURIs = append([]string(nil), c.PostLogoutRedirectURIs...)
		st.clients[c.ID] = &client{
			cfg:        c,
			loginURL:   func(id string) string { return loginPath + "?" + url.Values{"authRequestID": {id}}.Encode() },
			idTokenTTL: cfg.IDTokenTTL,
		}
	}
	return st
}

// randomID returns 256 random bits, base64url encoded.
func randomID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
