package authn

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// LoginStateTTL is how long a sign-in attempt may take, from the redirect
// to the IdP to the callback.
const LoginStateTTL = 10 * time.Minute

// MaxLoginStates is the most sign-in attempts (each in its own cookie) a
// browser keeps at once; PruneLoginStates makes room for one more.
const MaxLoginStates = 5

// Errors of OpenLoginState. The callback handler treats all of them as a
// failed sign-in and must not redeem the authorization code.
var (
	// ErrNoLoginState means no login state cookie matches the state
	// parameter: the attempt was started in another browser, already
	// consumed, pruned, or the state was forged.
	ErrNoLoginState = errors.New("authn: no login state for this sign-in")
	// ErrInvalidLoginState means the state parameter or the cookie is
	// malformed, was not sealed by this codec, or does not match.
	ErrInvalidLoginState = errors.New("authn: invalid login state")
	// ErrExpiredLoginState means the sign-in attempt is older than
	// LoginStateTTL.
	ErrExpiredLoginState = errors.New("authn: login state expired")
)

const (
	// loginStateVersion 2 keeps the creation time in nanoseconds, so that
	// attempts started within one second still prune oldest first (issue
	// 12.10); version 1 (whole seconds) is still opened, for attempts in
	// flight across an upgrade.
	loginStateVersion        byte = 2
	loginStateVersionSeconds byte = 1
	// loginStatePrefixLen is how much of the state names its cookie.
	loginStatePrefixLen = 8
	// randomStateBytes gives state and nonce 128 bits of entropy.
	randomStateBytes = 16
	// pkceVerifierBytes gives a 43-character verifier (RFC 7636 section 4.1).
	pkceVerifierBytes = 32
	// maxStateLen bounds the state parameter accepted from a callback.
	maxStateLen = 128
	// maxLoginReturnToBytes keeps a login state inside one cookie.
	maxLoginReturnToBytes = 2048
	// maxLoginCookiesScanned bounds the decryptions PruneLoginStates does
	// for one request; cookies beyond it are simply deleted.
	maxLoginCookiesScanned = 32
	// loginStateClockSkew tolerates replicas whose clocks differ a little.
	loginStateClockSkew = time.Minute
)

// LoginState is one sign-in attempt, sealed into its own short-lived cookie
// between the redirect to the IdP and the callback.
type LoginState struct {
	// State and Nonce are random, 128 bits each, base64url.
	State, Nonce string
	// PKCEVerifier is the PKCE code verifier (43 characters).
	PKCEVerifier string
	// ReturnTo is where to send the browser after sign-in; it must
	// already have passed SafeReturnTo.
	ReturnTo string
	// IdP is the configured name of the identity provider used.
	IdP string
	// StepUp is the step-up requirement this attempt satisfies, if any.
	StepUp string
	// CreatedAt is when the attempt started, kept to the nanosecond. The
	// Browser makes it strictly increasing within a process, so the
	// newest attempts are the ones kept.
	CreatedAt time.Time
}

// NewLoginState starts a sign-in attempt with fresh random state, nonce and
// PKCE verifier, created at now.
func NewLoginState(returnTo, idp string, now time.Time) (LoginState, error) {
	if len(returnTo) > maxLoginReturnToBytes {
		return LoginState{}, fmt.Errorf("authn: login state: return URL longer than %d bytes", maxLoginReturnToBytes)
	}
	return LoginState{
		State:        randomToken(randomStateBytes),
		Nonce:        randomToken(randomStateBytes),
		PKCEVerifier: randomToken(pkceVerifierBytes),
		ReturnTo:     returnTo,
		IdP:          idp,
		CreatedAt:    now,
	}, nil
}

// loginStamps hands out attempt creation times that strictly increase
// within a process even when the clock reads the same instant twice (or
// steps back by less than a second), so that pruning keeps the attempts
// that really were started last.
type loginStamps struct{ last atomic.Int64 }

// maxStampLead is how far a stamp may run ahead of the clock; a clock
// stepped back further than this restarts the sequence from the clock.
const maxStampLead = int64(time.Second)

func (s *loginStamps) next(now time.Time) time.Time {
	for {
		last, n := s.last.Load(), now.UnixNano()
		if n <= last && last-n < maxStampLead {
			n = last + 1
		}
		if s.last.CompareAndSwap(last, n) {
			return time.Unix(0, n)
		}
	}
}

// PKCEChallenge returns the S256 code challenge of the verifier.
func (ls LoginState) PKCEChallenge() string {
	sum := sha256.Sum256([]byte(ls.PKCEVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// SealLoginState returns the cookie that carries ls until the callback.
// Its name is derived from the state, so attempts in several tabs each
// have their own cookie; call PruneLoginStates first to keep their number
// bounded.
func (c *SessionCodec) SealLoginState(ls LoginState) (*http.Cookie, error) {
	switch {
	case !validState(ls.State):
		return nil, errors.New("authn: sealing login state: malformed state")
	case ls.Nonce == "" || ls.PKCEVerifier == "":
		return nil, errors.New("authn: sealing login state: missing nonce or PKCE verifier")
	case ls.CreatedAt.IsZero():
		return nil, errors.New("authn: sealing login state: missing creation time")
	}
	name := c.loginCookieName(ls.State)
	plain := appendLoginStatePayload(nil, &ls)
	value := sealToString(c.loginAEADs[0], loginStateVersion, plain, loginStateAD(loginStateVersion, name))
	clear(plain)
	if len(name)+1+len(value) > maxCookieBytes {
		return nil, errors.New("authn: sealing login state: too large for a cookie")
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     c.cfg.LoginCookiePath,
		MaxAge:   int(LoginStateTTL / time.Second),
		Secure:   !c.cfg.Insecure,
		HttpOnly: true,
		// Lax: the callback is a top-level GET navigation from the IdP.
		SameSite: http.SameSiteLaxMode,
	}, nil
}

// OpenLoginState returns the sign-in attempt whose state is state, read
// from its cookie, after checking that the sealed state equals state and
// that the attempt is younger than LoginStateTTL. Whenever the cookie
// exists the returned cookie deletes it; the handler must always set it, so
// that a state can be used once only.
func (c *SessionCodec) OpenLoginState(r *http.Request, state string, now time.Time) (LoginState, *http.Cookie, error) {
	if !validState(state) {
		return LoginState{}, nil, fmt.Errorf("%w: malformed state parameter", ErrInvalidLoginState)
	}
	name := c.loginCookieName(state)
	var stack [4]string
	values := requestCookieValues(r, name, stack[:0])
	if len(values) == 0 {
		return LoginState{}, nil, ErrNoLoginState
	}
	deletion := c.deletionCookie(name, c.cfg.LoginCookiePath, "")
	var firstErr error
	for _, v := range values {
		ls, err := c.openLoginValue(name, v)
		if err == nil {
			err = checkLoginState(ls, state, now)
		}
		if err == nil {
			return ls, deletion, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return LoginState{}, deletion, firstErr
}

// checkLoginState compares the sealed state with the callback's in
// constant time and checks the attempt's age.
func checkLoginState(ls LoginState, state string, now time.Time) error {
	if subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		return fmt.Errorf("%w: state does not match", ErrInvalidLoginState)
	}
	if ls.CreatedAt.After(now.Add(loginStateClockSkew)) {
		return fmt.Errorf("%w: created in the future", ErrInvalidLoginState)
	}
	if now.Sub(ls.CreatedAt) > LoginStateTTL {
		return ErrExpiredLoginState
	}
	return nil
}

// PruneLoginStates returns deletion cookies for the login state cookies on
// the request that are invalid or expired, and for the oldest valid ones,
// so that at most MaxLoginStates-1 remain and one more attempt can start.
// Attempts are ordered by creation time, then by cookie name, so the
// choice never depends on the order the browser sent the cookies in.
func (c *SessionCodec) PruneLoginStates(r *http.Request, now time.Time) []*http.Cookie {
	type attempt struct {
		name    string
		created time.Time
	}
	var (
		valid      []attempt
		doomed     []string
		seen       = make(map[string]bool)
		namePrefix = c.cfg.LoginCookiePrefix + "_"
		scanned    int
	)
	forEachRequestCookie(r, func(name, value string) bool {
		suffix, ok := strings.CutPrefix(name, namePrefix)
		if !ok || len(suffix) != loginStatePrefixLen || seen[name] {
			return true
		}
		seen[name] = true
		if scanned++; scanned > maxLoginCookiesScanned {
			doomed = append(doomed, name)
			return true
		}
		ls, err := c.openLoginValue(name, value)
		if err != nil || now.Sub(ls.CreatedAt) > LoginStateTTL || ls.CreatedAt.After(now.Add(loginStateClockSkew)) {
			doomed = append(doomed, name)
			return true
		}
		valid = append(valid, attempt{name, ls.CreatedAt})
		return true
	})
	if keep := MaxLoginStates - 1; len(valid) > keep {
		// Newest first.
		slices.SortFunc(valid, func(a, b attempt) int {
			if c := b.created.Compare(a.created); c != 0 {
				return c
			}
			return cmp.Compare(b.name, a.name)
		})
		for _, a := range valid[keep:] {
			doomed = append(doomed, a.name)
		}
	}
	slices.SortFunc(doomed, cmp.Compare)
	cookies := make([]*http.Cookie, 0, len(doomed))
	for _, name := range doomed {
		cookies = append(cookies, c.deletionCookie(name, c.cfg.LoginCookiePath, ""))
	}
	return cookies
}

// loginCookieName is <prefix>_<first 8 characters of state>; state must
// already be valid.
func (c *SessionCodec) loginCookieName(state string) string {
	return c.cfg.LoginCookiePrefix + "_" + state[:loginStatePrefixLen]
}

// loginStateAD binds a login state to its format version and cookie name,
// and with the name to the state it was issued for.
func loginStateAD(version byte, name string) []byte {
	return append([]byte{version}, name...)
}

// validState accepts a state as NewLoginState makes it: base64url, long
// enough to carry 128 bits and short enough to bound the work done on it.
func validState(state string) bool {
	if len(state) < 22 || len(state) > maxStateLen {
		return false
	}
	for i := 0; i < len(state); i++ {
		b := state[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// openLoginValue decrypts one login state cookie value.
func (c *SessionCodec) openLoginValue(name, value string) (LoginState, error) {
	if len(value) > maxCookieBytes {
		return LoginState{}, fmt.Errorf("%w: cookie too large", ErrInvalidLoginState)
	}
	sealed, err := strictBase64.DecodeString(value)
	if err != nil || len(sealed) < sealedOverhead {
		return LoginState{}, fmt.Errorf("%w: malformed cookie", ErrInvalidLoginState)
	}
	version := sealed[0]
	if version != loginStateVersion && version != loginStateVersionSeconds {
		return LoginState{}, fmt.Errorf("%w: unsupported version %d", ErrInvalidLoginState, version)
	}
	plain, ok := openWithAny(c.loginAEADs, nil, sealed[1:13], sealed[13:], loginStateAD(version, name))
	if !ok {
		return LoginState{}, fmt.Errorf("%w: not sealed by a configured key", ErrInvalidLoginState)
	}
	ls, err := decodeLoginStatePayload(plain, version)
	if err != nil {
		return LoginState{}, fmt.Errorf("%w: %w", ErrInvalidLoginState, err)
	}
	return ls, nil
}

// The login state payload is the strings State, Nonce, PKCEVerifier,
// ReturnTo, IdP and StepUp followed by CreatedAt, encoded like the session
// payload except that CreatedAt is in Unix nanoseconds (seconds in
// version 1).
func appendLoginStatePayload(dst []byte, ls *LoginState) []byte {
	for _, v := range [...]string{ls.State, ls.Nonce, ls.PKCEVerifier, ls.ReturnTo, ls.IdP, ls.StepUp} {
		dst = appendString(dst, v)
	}
	return binary.AppendVarint(dst, ls.CreatedAt.UnixNano())
}

func decodeLoginStatePayload(plain []byte, version byte) (LoginState, error) {
	r := payloadReader{buf: plain, str: string(plain)}
	var ls LoginState
	for _, v := range [...]*string{&ls.State, &ls.Nonce, &ls.PKCEVerifier, &ls.ReturnTo, &ls.IdP, &ls.StepUp} {
		*v = r.string()
	}
	var ns int64
	if version == loginStateVersionSeconds {
		if sec := r.varint(); sec > 0 && sec < math.MaxInt64/int64(time.Second) {
			ns = sec * int64(time.Second)
		}
	} else {
		ns = r.varint()
	}
	if ns > 0 {
		ls.CreatedAt = time.Unix(0, ns)
	}
	if r.bad || r.off != len(r.buf) || ls.CreatedAt.IsZero() {
		return LoginState{}, errMalformedPayload
	}
	return ls, nil
}
