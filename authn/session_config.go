package authn

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// DefaultSessionCookieName is the session cookie name used when
// SessionCodecConfig.CookieName is empty.
const DefaultSessionCookieName = "_ztp_session"

// DefaultSessionMaxChunks is the number of cookies a session may be split
// into when SessionCodecConfig.MaxChunks is zero.
const DefaultSessionMaxChunks = 4

// MinSessionSecretBytes is the minimum length of each session secret.
const MinSessionSecretBytes = 32

// maxSessionChunks is the hard upper bound on MaxChunks: the chunk count is
// written as a single decimal digit in front of the first chunk.
const maxSessionChunks = 9

// maxSessionSecrets bounds the number of secrets, because Open tries each
// key in turn for a cookie it cannot otherwise attribute.
const maxSessionSecrets = 8

// maxCookieNameBytes keeps the name short enough that name, chunk suffix
// and a useful value fit in one cookie.
const maxCookieNameBytes = 64

// HKDF info strings, one per purpose, so that the same configured secret
// never keys two different kinds of sealed value.
const (
	sessionKeyInfo    = "ztproxy session v1"
	loginStateKeyInfo = "ztproxy login state v1"
)

// Cookie name prefixes that browsers give extra guarantees for (RFC 6265bis
// section 4.1.3): both require Secure; __Host- also forbids Domain and
// requires Path=/, which makes the cookie immune to tossing from sibling
// subdomains.
const (
	hostCookiePrefix   = "__Host-"
	secureCookiePrefix = "__Secure-"
)

// SessionCodecConfig configures a SessionCodec.
type SessionCodecConfig struct {
	// CookieName is the name of the session cookie; further chunks are
	// named CookieName_1, CookieName_2 and so on. DefaultSessionCookieName
	// when empty. A "__Host-" name is recommended when Domain is empty.
	CookieName string
	// Domain is the cookie's Domain attribute. Empty means a host-only
	// cookie, which is the safe default; set it only to share a session
	// across route hosts under one parent domain.
	Domain string
	// Secrets are the keys, each at least MinSessionSecretBytes long. The
	// first seals; every one opens, so a new secret can be prepended and an
	// old one removed later without signing everybody out.
	Secrets [][]byte
	// MaxChunks is the largest number of cookies one session may occupy,
	// DefaultSessionMaxChunks when zero, at most 9.
	MaxChunks int
	// LoginCookiePrefix names the per-attempt login state cookies
	// (<prefix>_<first 8 characters of state>). CookieName + "_login" when
	// empty.
	LoginCookiePrefix string
	// LoginCookiePath is the Path of the login state cookies. "/.ztp/" when
	// empty (they are only needed by the callback, and should not travel
	// with every request to an application), or "/" for a "__Host-" prefix.
	LoginCookiePath string
	// Insecure drops the Secure attribute so that cookies work over plain
	// HTTP on loopback in tests. It MUST NOT be set in production: the
	// session cookie would then be sent over any plain-HTTP connection to
	// the host.
	Insecure bool
}

// CheckAndSetDefaults validates c and fills in defaults, reporting every
// problem at once. Secrets are never included in its errors.
func (c *SessionCodecConfig) CheckAndSetDefaults() error {
	var errs []error
	if c.CookieName == "" {
		c.CookieName = DefaultSessionCookieName
	}
	if err := checkCookieName(c.CookieName); err != nil {
		errs = append(errs, fmt.Errorf("cookie_name: %w", err))
	}
	if c.Domain != "" && (strings.ContainsAny(c.Domain, ";, \t\r\n\"\\") || strings.Trim(c.Domain, ".") == "") {
		errs = append(errs, fmt.Errorf("cookie_domain: %q is not a valid domain", c.Domain))
	}
	if strings.HasPrefix(c.CookieName, hostCookiePrefix) && c.Domain != "" {
		errs = append(errs, fmt.Errorf("cookie_domain: must be empty for a %q cookie name", hostCookiePrefix))
	}
	if c.Insecure && (strings.HasPrefix(c.CookieName, hostCookiePrefix) || strings.HasPrefix(c.CookieName, secureCookiePrefix)) {
		errs = append(errs, fmt.Errorf("cookie_name: %q and %q cookies require Secure; do not combine them with Insecure", hostCookiePrefix, secureCookiePrefix))
	}
	errs = append(errs, c.checkSecrets()...)
	switch {
	case c.MaxChunks == 0:
		c.MaxChunks = DefaultSessionMaxChunks
	case c.MaxChunks < 1 || c.MaxChunks > maxSessionChunks:
		errs = append(errs, fmt.Errorf("max_chunks: %d is not between 1 and %d", c.MaxChunks, maxSessionChunks))
	}
	errs = append(errs, c.checkLoginCookie()...)
	return errors.Join(errs...)
}

func (c *SessionCodecConfig) checkSecrets() []error {
	var errs []error
	switch {
	case len(c.Secrets) == 0:
		errs = append(errs, errors.New("secrets: at least one secret is required"))
	case len(c.Secrets) > maxSessionSecrets:
		errs = append(errs, fmt.Errorf("secrets: %d given, at most %d are supported", len(c.Secrets), maxSessionSecrets))
	}
	for i, s := range c.Secrets {
		if len(s) < MinSessionSecretBytes {
			// Only the length: the secret itself must never reach an error.
			errs = append(errs, fmt.Errorf("secrets[%d]: %d bytes, at least %d are required", i, len(s), MinSessionSecretBytes))
		}
	}
	return errs
}

func (c *SessionCodecConfig) checkLoginCookie() []error {
	var errs []error
	if c.LoginCookiePrefix == "" {
		c.LoginCookiePrefix = c.CookieName + "_login"
	}
	if err := checkCookieName(c.LoginCookiePrefix); err != nil {
		errs = append(errs, fmt.Errorf("login_cookie_prefix: %w", err))
	}
	if c.LoginCookiePrefix == c.CookieName {
		errs = append(errs, errors.New("login_cookie_prefix: must differ from cookie_name"))
	}
	hostPrefixed := strings.HasPrefix(c.LoginCookiePrefix, hostCookiePrefix)
	if c.LoginCookiePath == "" {
		c.LoginCookiePath = "/.ztp/"
		if hostPrefixed {
			c.LoginCookiePath = "/"
		}
	}
	if !strings.HasPrefix(c.LoginCookiePath, "/") || strings.ContainsAny(c.LoginCookiePath, ";\x00\r\n\t ") {
		errs = append(errs, fmt.Errorf("login_cookie_path: %q must be an absolute path", c.LoginCookiePath))
	}
	if hostPrefixed && c.LoginCookiePath != "/" {
		errs = append(errs, fmt.Errorf("login_cookie_path: must be \"/\" for a %q prefix", hostCookiePrefix))
	}
	return errs
}

// checkCookieName requires an RFC 7230 token short enough to leave room for
// chunk suffixes and values.
func checkCookieName(name string) error {
	if len(name) > maxCookieNameBytes {
		return fmt.Errorf("%q is longer than %d bytes", name, maxCookieNameBytes)
	}
	for i := 0; i < len(name); i++ {
		if !isCookieNameByte(name[i]) {
			return fmt.Errorf("%q is not a valid cookie name", name)
		}
	}
	return nil
}

func isCookieNameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// String describes the configuration without its secrets, so that printing
// a config with %v cannot leak them.
func (c SessionCodecConfig) String() string {
	return fmt.Sprintf("{CookieName:%s Domain:%s Secrets:[%d redacted] MaxChunks:%d LoginCookiePrefix:%s LoginCookiePath:%s Insecure:%t}",
		c.CookieName, c.Domain, len(c.Secrets), c.MaxChunks, c.LoginCookiePrefix, c.LoginCookiePath, c.Insecure)
}

// LogValue describes the configuration to log/slog without its secrets.
func (c SessionCodecConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("cookie_name", c.CookieName),
		slog.String("cookie_domain", c.Domain),
		slog.Int("secrets", len(c.Secrets)),
		slog.Int("max_chunks", c.MaxChunks),
		slog.Bool("insecure", c.Insecure),
	)
}

// deriveAEAD derives the purpose-specific AES-256-GCM key for one secret.
func deriveAEAD(secret []byte, info string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
