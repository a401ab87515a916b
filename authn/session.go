package authn

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"ztproxy/identity"
)

// Errors of SessionCodec.Open. Callers send the browser to sign-in for any
// of them and clear the cookies; they must never become a 500.
var (
	// ErrNoSession means the request carries no session cookie.
	ErrNoSession = errors.New("authn: no session cookie")
	// ErrInvalidSession means a session cookie is present but was not
	// produced by this codec's keys for this cookie name, or is truncated,
	// oversized, of an unknown version or missing a chunk.
	ErrInvalidSession = errors.New("authn: invalid session cookie")
	// ErrExpiredSession means the cookie is authentic but its session has
	// reached ExpiresAt.
	ErrExpiredSession = errors.New("authn: session expired")
	// ErrSessionTooLarge is returned by Seal when the sealed session needs
	// more than MaxChunks cookies; usually the principal has too many
	// groups for a browser session.
	ErrSessionTooLarge = errors.New("authn: session too large for its cookies")
)

// maxCookieBytes bounds one Set-Cookie name=value pair. Browsers accept
// 4096 bytes for name, value and attributes together; this leaves room for
// the attributes.
const maxCookieBytes = 3800

// sessionVersion is the first byte of every sealed session. It is covered
// by the AEAD, so it cannot be changed without detection.
const sessionVersion byte = 1

// strictBase64 rejects the non-canonical encodings (non-zero trailing
// bits) that the default decoder ignores, so each sealed value has exactly
// one accepted spelling.
var strictBase64 = base64.RawURLEncoding.Strict()

// sealedOverhead is the version byte, the GCM nonce and the GCM tag.
const sealedOverhead = 1 + 12 + 16

// Session is the state of one browser session, carried in its cookie.
// Refresh tokens are never part of it; they stay server-side.
type Session struct {
	// ID is a random 128-bit identifier, base64url, used to revoke the
	// session server-side.
	ID string
	// Principal is the signed-in user. Only Kind, ID, Issuer, Subject,
	// Email, EmailVerified, Name, Groups, AMR, ACR, AuthTime and IdP are
	// sealed; Open fills AuthKind (browser), SessionID (ID) and Expiry
	// (ExpiresAt) from the session itself.
	Principal identity.Principal
	// DeviceFingerprint is the client certificate fingerprint when the
	// session was created over mTLS, and empty otherwise.
	DeviceFingerprint string
	// IssuedAt, ExpiresAt and LastSeen are kept to the second.
	IssuedAt, ExpiresAt, LastSeen time.Time
	// IDTokenExpiry is when the IdP tokens need refreshing.
	IDTokenExpiry time.Time
}

// NewSessionID returns a random 128-bit session identifier, base64url
// encoded without padding.
func NewSessionID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SessionCodec seals sessions and login states into cookies and opens them
// again. It performs no I/O and is safe for concurrent use.
type SessionCodec struct {
	cfg SessionCodecConfig
	// sessionAEADs and loginAEADs hold one key per configured secret; the
	// first seals.
	sessionAEADs []cipher.AEAD
	loginAEADs   []cipher.AEAD
	// sessionAD is the associated data of session cookies: the version
	// byte and the cookie name, so a value cannot move to another cookie.
	sessionAD []byte
	// chunkNames are CookieName, CookieName_1, ... up to MaxChunks.
	chunkNames []string
	// chunkLimit is the longest value any chunk may have.
	chunkLimit int
}

// NewSessionCodec validates cfg and derives the per-purpose keys. The
// secrets are not retained.
func NewSessionCodec(cfg SessionCodecConfig) (*SessionCodec, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("authn: session config: %w", err)
	}
	c := &SessionCodec{
		cfg:       cfg,
		sessionAD: append([]byte{sessionVersion}, cfg.CookieName...),
	}
	c.cfg.Secrets = nil
	for _, secret := range cfg.Secrets {
		sessionAEAD, err := deriveAEAD(secret, sessionKeyInfo)
		if err != nil {
			return nil, fmt.Errorf("authn: deriving session key: %w", err)
		}
		loginAEAD, err := deriveAEAD(secret, loginStateKeyInfo)
		if err != nil {
			return nil, fmt.Errorf("authn: deriving login state key: %w", err)
		}
		c.sessionAEADs = append(c.sessionAEADs, sessionAEAD)
		c.loginAEADs = append(c.loginAEADs, loginAEAD)
	}
	for i := range cfg.MaxChunks {
		c.chunkNames = append(c.chunkNames, chunkName(cfg.CookieName, i))
	}
	// Every chunk gets the same limit, computed for the longest name; the
	// first chunk also carries a two-byte "<count>." prefix.
	c.chunkLimit = maxCookieBytes - len(c.chunkNames[len(c.chunkNames)-1]) - 1
	return c, nil
}

func chunkName(base string, i int) string {
	if i == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, i)
}

// Seal encrypts s and returns the cookies to set: one, or up to MaxChunks
// when the sealed value does not fit in one. The cookies expire with the
// session. A stale higher chunk left from an earlier, larger session is
// harmless: the first chunk records how many chunks belong to it.
func (c *SessionCodec) Seal(s *Session, now time.Time) ([]*http.Cookie, error) {
	switch {
	case s == nil || s.ID == "":
		return nil, errors.New("authn: sealing session: missing session id")
	case !s.ExpiresAt.After(now):
		return nil, errors.New("authn: sealing session: already expired")
	}
	plain := appendSessionPayload(make([]byte, 0, 512), s)
	value := sealToString(c.sessionAEADs[0], sessionVersion, plain, c.sessionAD)
	clear(plain)

	values := []string{value}
	if len(value) > c.chunkLimit {
		per := c.chunkLimit - 2
		n := (len(value) + per - 1) / per
		if n > c.cfg.MaxChunks {
			return nil, fmt.Errorf("%w: %d bytes need %d cookies, at most %d allowed", ErrSessionTooLarge, len(value), n, c.cfg.MaxChunks)
		}
		values = values[:0]
		for i := 0; i < n; i++ {
			part := value[i*per : min((i+1)*per, len(value))]
			if i == 0 {
				part = fmt.Sprintf("%d.%s", n, part)
			}
			values = append(values, part)
		}
	}
	maxAge := int(s.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
	cookies := make([]*http.Cookie, len(values))
	for i, v := range values {
		ck := c.sessionCookie(c.chunkNames[i], v)
		ck.Expires = s.ExpiresAt.UTC()
		ck.MaxAge = max(maxAge, 1)
		cookies[i] = ck
	}
	return cookies, nil
}

// Open returns the session sealed in the request's cookies. Its errors are
// ErrNoSession, or ErrInvalidSession or ErrExpiredSession wrapped with a
// short cause that never contains cookie contents. If several cookies have
// the session's name (one may have been planted from a sibling domain), the
// first one that opens wins.
func (c *SessionCodec) Open(r *http.Request, now time.Time) (*Session, error) {
	var stack [4]string
	candidates := requestCookieValues(r, c.cfg.CookieName, stack[:0])
	if len(candidates) == 0 {
		return nil, ErrNoSession
	}
	var firstErr error
	for _, v := range candidates {
		s, err := c.openCandidate(r, v, now)
		if err == nil {
			return s, nil
		}
		if firstErr == nil || (errors.Is(err, ErrExpiredSession) && !errors.Is(firstErr, ErrExpiredSession)) {
			firstErr = err
		}
	}
	return nil, firstErr
}

// openCandidate opens one value of the first cookie, gathering the other
// chunks it announces.
func (c *SessionCodec) openCandidate(r *http.Request, first string, now time.Time) (*Session, error) {
	if first == "" {
		return nil, ErrNoSession
	}
	if len(first) > c.chunkLimit {
		return nil, fmt.Errorf("%w: cookie too large", ErrInvalidSession)
	}
	value := first
	if len(first) >= 2 && first[1] == '.' {
		n := int(first[0] - '0')
		if n < 2 || n > c.cfg.MaxChunks {
			return nil, fmt.Errorf("%w: bad chunk count", ErrInvalidSession)
		}
		var b strings.Builder
		b.Grow(n * c.chunkLimit)
		b.WriteString(first[2:])
		for i := 1; i < n; i++ {
			var stack [1]string
			chunk := requestCookieValues(r, c.chunkNames[i], stack[:0])
			if len(chunk) == 0 || chunk[0] == "" {
				return nil, fmt.Errorf("%w: chunk %d of %d missing", ErrInvalidSession, i, n)
			}
			if len(chunk[0]) > c.chunkLimit {
				return nil, fmt.Errorf("%w: chunk %d too large", ErrInvalidSession, i)
			}
			b.WriteString(chunk[0])
		}
		value = b.String()
	}
	return c.openValue(value, now)
}

// openValue decrypts and decodes one complete sealed value.
func (c *SessionCodec) openValue(value string, now time.Time) (*Session, error) {
	decLen := base64.RawURLEncoding.DecodedLen(len(value))
	if decLen < sealedOverhead {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidSession)
	}
	bufp := getOpenBuffer(2 * decLen)
	defer putOpenBuffer(bufp)
	buf := *bufp
	sealed := buf[:decLen]
	n, err := strictBase64.Decode(sealed, unsafeBytes(value))
	if err != nil || n != decLen {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalidSession)
	}
	if sealed[0] != sessionVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrInvalidSession, sealed[0])
	}
	// Open into a separate buffer: a failed Open clears its output, which
	// would destroy the ciphertext needed to try the next key.
	plain, ok := openWithAny(c.sessionAEADs, buf[decLen:decLen], sealed[1:13], sealed[13:], c.sessionAD)
	if !ok {
		return nil, fmt.Errorf("%w: not sealed by a configured key", ErrInvalidSession)
	}
	s, err := decodeSessionPayload(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	if s.ID == "" || s.ExpiresAt.IsZero() {
		return nil, fmt.Errorf("%w: incomplete", ErrInvalidSession)
	}
	if !now.Before(s.ExpiresAt) {
		return nil, ErrExpiredSession
	}
	s.Principal.AuthKind = identity.AuthBrowser
	s.Principal.SessionID = s.ID
	s.Principal.Expiry = s.ExpiresAt
	return s, nil
}

// sealToString seals plain with a random nonce and returns
// base64url(version || nonce || ciphertext || tag). The version byte must
// also be part of ad so that it is authenticated.
func sealToString(aead cipher.AEAD, version byte, plain, ad []byte) string {
	sealed := make([]byte, 1+12, sealedOverhead+len(plain))
	sealed[0] = version
	rand.Read(sealed[1:13])
	sealed = aead.Seal(sealed, sealed[1:13], plain, ad)
	return base64.RawURLEncoding.EncodeToString(sealed)
}

// openWithAny tries each key in order, the sealing key first.
func openWithAny(aeads []cipher.AEAD, dst, nonce, ciphertext, ad []byte) ([]byte, bool) {
	for _, aead := range aeads {
		if plain, err := aead.Open(dst, nonce, ciphertext, ad); err == nil {
			return plain, true
		}
	}
	return nil, false
}

// Clear returns cookies that delete every session chunk present on the
// request, whatever its count.
func (c *SessionCodec) Clear(r *http.Request) []*http.Cookie {
	var cookies []*http.Cookie
	seen := make(map[string]bool)
	forEachRequestCookie(r, func(name, _ string) bool {
		if !seen[name] && c.isChunkName(name) {
			seen[name] = true
			cookies = append(cookies, c.deletionCookie(name, "/", c.cfg.Domain))
		}
		return true
	})
	return cookies
}

// isChunkName reports whether name is CookieName or CookieName_<n>.
func (c *SessionCodec) isChunkName(name string) bool {
	rest, ok := strings.CutPrefix(name, c.cfg.CookieName)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	digits, ok := strings.CutPrefix(rest, "_")
	if !ok || digits == "" || len(digits) > 2 {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}
