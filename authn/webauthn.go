package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"ztproxy/identity"
)

// WebAuthnCredential mirrors the store's credential (authn must not import
// store); the fields are in the same order so config converts directly.
type WebAuthnCredential struct {
	UserID     string
	ID         []byte
	PublicKey  []byte
	SignCount  uint32
	AAGUID     []byte
	Transports []string
	Name       string
	CreatedAt  time.Time
	LastUsed   time.Time
}

// WebAuthnStore keeps the WebAuthn credentials of users.
type WebAuthnStore interface {
	PutCredential(ctx context.Context, c WebAuthnCredential) error
	ListCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// DeleteCredential returns ErrWebAuthnKeyNotFound when there is
	// nothing to delete.
	DeleteCredential(ctx context.Context, userID string, id []byte) error
	// UpdateSignCount stores newCount and the time of use. It returns an
	// error when the count did not increase, unless both are zero.
	UpdateSignCount(ctx context.Context, userID string, id []byte, newCount uint32) error
}

// WebAuthnConfig configures proxy-verified WebAuthn step-up.
type WebAuthnConfig struct {
	// RPID is the relying party id: the registrable domain (or host) of
	// the proxy's external origin, without scheme or port.
	RPID string
	// RPDisplayName is shown by the browser; "ztproxy" when empty.
	RPDisplayName string
	// RPOrigins are the origins the ceremony pages are served from, e.g.
	// "https://auth.example.com".
	RPOrigins []string
	// Store keeps the credentials.
	Store WebAuthnStore
	// EnrollMaxAge is how recent the user's sign-in must be to add or
	// remove a security key (5 minutes when zero).
	EnrollMaxAge time.Duration
	// Codec seals the ceremony state cookies (with its login state keys).
	Codec *SessionCodec
	// Now is time.Now when nil.
	Now func() time.Time
}

// WebAuthnStateTTL is how long a registration or step-up ceremony may take,
// from Begin* to Finish*.
const WebAuthnStateTTL = 5 * time.Minute

// defaultWebAuthnEnrollMaxAge is how recent a sign-in must be to change
// the user's security keys when WebAuthnConfig.EnrollMaxAge is zero.
const defaultWebAuthnEnrollMaxAge = 5 * time.Minute

// Errors of the WebAuthn ceremonies. All of them mean the ceremony failed;
// handlers show an error and let the user start again.
var (
	// ErrWebAuthnNoCredentials means the user has no registered
	// credential, so there is nothing to step up with: enroll one first.
	ErrWebAuthnNoCredentials = errors.New("authn: no webauthn credential registered")
	// ErrWebAuthnKeyNotFound means the user has no key with that id
	// (already removed).
	ErrWebAuthnKeyNotFound = errors.New("authn: no such webauthn credential")
	// ErrWebAuthnState means the ceremony state cookie is missing,
	// malformed, expired, or belongs to another user, session or ceremony.
	ErrWebAuthnState = errors.New("authn: invalid webauthn ceremony state")
	// ErrWebAuthnVerify means the authenticator's response did not verify
	// (challenge, origin, RP id, user verification, signature, credential).
	ErrWebAuthnVerify = errors.New("authn: webauthn response did not verify")
	// ErrWebAuthnSignCount means the assertion's signature counter did not
	// increase: a replayed assertion or a cloned authenticator.
	ErrWebAuthnSignCount = errors.New("authn: webauthn sign count did not increase")
)

// Ceremony kinds, part of the state cookie's name and associated data.
const (
	webauthnRegister = "register"
	webauthnLogin    = "login"
)

// webauthnStateVersion is the first byte of a sealed ceremony state. It
// differs from the login state's, and the associated data names the purpose,
// so neither value can stand in for the other although both use the login
// state keys.
const webauthnStateVersion byte = 0x57

// webauthnStateClockSkew tolerates replicas whose clocks differ a little.
const webauthnStateClockSkew = time.Minute

// WebAuthn runs WebAuthn registration and assertion ceremonies for step-up.
// It performs no I/O besides its Store and is safe for concurrent use.
type WebAuthn struct {
	cfg WebAuthnConfig
	lib *webauthn.WebAuthn
}

// NewWebAuthn validates cfg.
func NewWebAuthn(cfg WebAuthnConfig) (*WebAuthn, error) {
	if cfg.Store == nil {
		return nil, errors.New("authn: webauthn: missing store")
	}
	if cfg.Codec == nil {
		return nil, errors.New("authn: webauthn: missing session codec")
	}
	if err := protocol.ValidateRPID(cfg.RPID); cfg.RPID == "" || err != nil {
		return nil, fmt.Errorf("authn: webauthn: invalid rp id %q", cfg.RPID)
	}
	if len(cfg.RPOrigins) == 0 {
		return nil, errors.New("authn: webauthn: missing origins")
	}
	if cfg.RPDisplayName == "" {
		cfg.RPDisplayName = "ztproxy"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EnrollMaxAge <= 0 {
		cfg.EnrollMaxAge = defaultWebAuthnEnrollMaxAge
	}
	cfg.RPOrigins = slices.Clone(cfg.RPOrigins)
	lib, err := webauthn.New(&webauthn.Config{
		RPID:                  cfg.RPID,
		RPDisplayName:         cfg.RPDisplayName,
		RPOrigins:             cfg.RPOrigins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: WebAuthnStateTTL, TimeoutUVD: WebAuthnStateTTL},
			Registration: webauthn.TimeoutConfig{Timeout: WebAuthnStateTTL, TimeoutUVD: WebAuthnStateTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("authn: webauthn: %w", err)
	}
	return &WebAuthn{cfg: cfg, lib: lib}, nil
}

// webauthnUser adapts a principal and its stored credentials to the
// library.
type webauthnUser struct {
	p     identity.Principal
	creds []webauthn.Credential
}

// WebAuthnUserHandle is the user handle given to authenticators: a hash of
// the principal id, which may be longer than the 64 bytes allowed and
// should not reveal the user's issuer and subject to the authenticator.
func WebAuthnUserHandle(principalID string) []byte {
	h := sha256.Sum256([]byte("ztproxy webauthn user\x00" + principalID))
	return h[:]
}

func (u *webauthnUser) WebAuthnID() []byte { return WebAuthnUserHandle(u.p.ID) }

func (u *webauthnUser) WebAuthnName() string {
	if u.p.Email != "" {
		return u.p.Email
	}
	return u.p.ID
}

func (u *webauthnUser) WebAuthnDisplayName() string {
	if u.p.Name != "" {
		return u.p.Name
	}
	return u.WebAuthnName()
}

func (u *webauthnUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func checkWebAuthnPrincipal(p identity.Principal) error {
	if p.Kind != identity.KindUser || p.ID == "" {
		return errors.New("authn: webauthn: only signed-in users have credentials")
	}
	return nil
}

// user loads the principal's credentials.
func (w *WebAuthn) user(ctx context.Context, p identity.Principal) (*webauthnUser, []WebAuthnCredential, error) {
	if err := checkWebAuthnPrincipal(p); err != nil {
		return nil, nil, err
	}
	stored, err := w.cfg.Store.ListCredentials(ctx, p.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: webauthn: listing credentials: %w", err)
	}
	u := &webauthnUser{p: p}
	for _, c := range stored {
		u.creds = append(u.creds, libCredential(c))
	}
	return u, stored, nil
}

func libCredential(c WebAuthnCredential) webauthn.Credential {
	lc := webauthn.Credential{
		ID:        slices.Clone(c.ID),
		PublicKey: slices.Clone(c.PublicKey),
		Authenticator: webauthn.Authenticator{
			AAGUID:    slices.Clone(c.AAGUID),
			SignCount: c.SignCount,
		},
	}
	for _, t := range c.Transports {
		lc.Transport = append(lc.Transport, protocol.AuthenticatorTransport(t))
	}
	return lc
}

func descriptors(creds []webauthn.Credential) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(creds))
	for _, c := range creds {
		out = append(out, c.Descriptor())
	}
	return out
}

// BeginRegistration returns the PublicKeyCredentialCreationOptions JSON for
// navigator.credentials.create (the "publicKey" member of
// CredentialCreationOptions) and the sealed ceremony state cookie. User
// verification is required and the user's registered credentials are
// excluded.
func (w *WebAuthn) BeginRegistration(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error) {
	u, _, err := w.user(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	creation, sd, err := w.lib.BeginRegistration(u,
		webauthn.WithExclusions(descriptors(u.creds)),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: webauthn: beginning registration: %w", err)
	}
	return w.begin(webauthnRegister, p, creation.Response, sd)
}

// FinishRegistration verifies the attestation response in the request body
// (the JSON of the PublicKeyCredential from navigator.credentials.create)
// against the state cookie sealed by BeginRegistration, and stores the new
// credential. The key's name is the request's "name" query parameter
// (printable text, at most 64 characters), or a dated default.
func (w *WebAuthn) FinishRegistration(ctx context.Context, p identity.Principal, r *http.Request) (WebAuthnCredential, error) {
	if err := checkWebAuthnPrincipal(p); err != nil {
		return WebAuthnCredential{}, err
	}
	sd, err := w.openState(r, webauthnRegister, p)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	u, _, err := w.user(ctx, p)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponse(r)
	if err != nil {
		return WebAuthnCredential{}, verifyError(err)
	}
	lc, err := w.lib.CreateCredential(u, sd, parsed)
	if err != nil {
		return WebAuthnCredential{}, verifyError(err)
	}
	if !lc.Flags.UserVerified {
		return WebAuthnCredential{}, fmt.Errorf("%w: user not verified", ErrWebAuthnVerify)
	}
	for _, c := range u.creds {
		if bytes.Equal(c.ID, lc.ID) {
			return WebAuthnCredential{}, fmt.Errorf("%w: credential already registered", ErrWebAuthnVerify)
		}
	}
	now := w.cfg.Now().UTC().Truncate(time.Second)
	cred := WebAuthnCredential{
		UserID:    p.ID,
		ID:        lc.ID,
		PublicKey: lc.PublicKey,
		AAGUID:    lc.Authenticator.AAGUID,
		SignCount: lc.Authenticator.SignCount,
		Name:      keyName(r.URL.Query().Get("name"), now),
		CreatedAt: now,
	}
	for _, t := range lc.Transport {
		cred.Transports = append(cred.Transports, string(t))
	}
	if err := w.cfg.Store.PutCredential(ctx, cred); err != nil {
		return WebAuthnCredential{}, fmt.Errorf("authn: webauthn: storing credential: %w", err)
	}
	return cred, nil
}

// BeginLogin returns the PublicKeyCredentialRequestOptions JSON for
// navigator.credentials.get (the "publicKey" member) and the sealed
// ceremony state cookie. User verification is required and only the user's
// registered credentials are allowed; ErrWebAuthnNoCredentials when there
// are none.
func (w *WebAuthn) BeginLogin(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error) {
	u, _, err := w.user(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	if len(u.creds) == 0 {
		return nil, nil, ErrWebAuthnNoCredentials
	}
	assertion, sd, err := w.lib.BeginLogin(u,
		webauthn.WithUserVerification(protocol.VerificationRequired),
		webauthn.WithAllowedCredentials(descriptors(u.creds)),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: webauthn: beginning login: %w", err)
	}
	return w.begin(webauthnLogin, p, assertion.Response, sd)
}

// FinishLogin verifies the assertion response in the request body (the
// JSON of the PublicKeyCredential from navigator.credentials.get) against
// the state cookie sealed by BeginLogin: the challenge, origin and RP id,
// user presence and verification, that the credential is one of the user's,
// the signature, and that the signature counter increased (unless the
// authenticator keeps none). It returns the credential used, with its new
// count.
func (w *WebAuthn) FinishLogin(ctx context.Context, p identity.Principal, r *http.Request) (WebAuthnCredential, error) {
	if err := checkWebAuthnPrincipal(p); err != nil {
		return WebAuthnCredential{}, err
	}
	sd, err := w.openState(r, webauthnLogin, p)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	u, stored, err := w.user(ctx, p)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponse(r)
	if err != nil {
		return WebAuthnCredential{}, verifyError(err)
	}
	idx := slices.IndexFunc(stored, func(c WebAuthnCredential) bool { return bytes.Equal(c.ID, parsed.RawID) })
	if idx < 0 {
		return WebAuthnCredential{}, fmt.Errorf("%w: credential not registered for this user", ErrWebAuthnVerify)
	}
	// The store keeps no backup-eligibility flag, which the library
	// compares with the assertion's; take it from the assertion.
	u.creds[idx].Flags.BackupEligible = parsed.Response.AuthenticatorData.Flags.HasBackupEligible()
	lc, err := w.lib.ValidateLogin(u, sd, parsed)
	if err != nil {
		return WebAuthnCredential{}, verifyError(err)
	}
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		return WebAuthnCredential{}, fmt.Errorf("%w: user not verified", ErrWebAuthnVerify)
	}
	newCount := parsed.Response.AuthenticatorData.Counter
	if lc.Authenticator.CloneWarning {
		return WebAuthnCredential{}, fmt.Errorf("%w: %d after %d", ErrWebAuthnSignCount, newCount, stored[idx].SignCount)
	}
	if err := w.cfg.Store.UpdateSignCount(ctx, p.ID, stored[idx].ID, newCount); err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%w: %w", ErrWebAuthnSignCount, err)
	}
	cred := stored[idx]
	cred.SignCount = newCount
	cred.LastUsed = w.cfg.Now().UTC().Truncate(time.Second)
	return cred, nil
}

// keyName cleans a user-chosen security key name.
func keyName(raw string, now time.Time) string {
	name := strings.TrimSpace(sanitizeText(raw))
	if r := []rune(name); len(r) > 64 {
		name = string(r[:64])
	}
	if name == "" {
		name = "Security key added " + now.Format(time.DateOnly)
	}
	return name
}

// UpgradeSession returns a copy of s after a successful WebAuthn step-up:
// amr gains "hwk" and "webauthn" (once each), which makes the principal
// count as MFA, and the authentication time is now. The caller seals it
// again (and may rotate the session id).
func UpgradeSession(s *Session, now time.Time) *Session {
	if s == nil {
		return nil
	}
	out := *s
	out.Principal.AMR = slices.Clone(s.Principal.AMR)
	for _, m := range []string{"hwk", "webauthn"} {
		if !slices.Contains(out.Principal.AMR, m) {
			out.Principal.AMR = append(out.Principal.AMR, m)
		}
	}
	out.Principal.Groups = slices.Clone(s.Principal.Groups)
	if s.Principal.Claims != nil {
		out.Principal.Claims = make(map[string]string, len(s.Principal.Claims))
		for k, v := range s.Principal.Claims {
			out.Principal.Claims[k] = v
		}
	}
	out.Principal.AuthTime = now.UTC().Truncate(time.Second)
	return &out
}

// ClearWebAuthnState returns the cookies that delete both ceremony state
// cookies; handlers set them after a Finish*, successful or not.
func (w *WebAuthn) ClearWebAuthnState() []*http.Cookie {
	c := w.cfg.Codec
	return []*http.Cookie{
		c.deletionCookie(w.stateCookieName(webauthnRegister), c.cfg.LoginCookiePath, ""),
		c.deletionCookie(w.stateCookieName(webauthnLogin), c.cfg.LoginCookiePath, ""),
	}
}

// verifyError wraps a library error in ErrWebAuthnVerify, with the
// library's debugging detail (it names the failed check, never secrets).
func verifyError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w: %w (%s)", ErrWebAuthnVerify, err, pe.DevInfo)
	}
	return fmt.Errorf("%w: %w", ErrWebAuthnVerify, err)
}
