package authn

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"ztproxy/identity"
)

// webauthnState is one ceremony between Begin* and Finish*, sealed into a
// short-lived cookie with the login state keys. It binds the ceremony kind,
// the user, the browser session (when known) and the library's session data,
// which holds the challenge.
type webauthnState struct {
	Kind      string               `json:"k"`
	UserID    string               `json:"u"`
	SessionID string               `json:"s,omitempty"`
	CreatedAt int64                `json:"t"`
	Data      webauthn.SessionData `json:"d"`
}

// stateCookieName is <login cookie prefix>_webauthn_<kind>; its suffix is
// never 8 characters long, so PruneLoginStates leaves it alone.
func (w *WebAuthn) stateCookieName(kind string) string {
	return w.cfg.Codec.cfg.LoginCookiePrefix + "_webauthn_" + kind
}

func webauthnStateAD(name string) []byte {
	return append([]byte{webauthnStateVersion}, "webauthn state\x00"+name...)
}

// begin marshals the options for the browser and seals the state.
func (w *WebAuthn) begin(kind string, p identity.Principal, options any, sd *webauthn.SessionData) ([]byte, *http.Cookie, error) {
	optionsJSON, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: webauthn: encoding options: %w", err)
	}
	st := webauthnState{
		Kind: kind, UserID: p.ID, SessionID: p.SessionID,
		CreatedAt: w.cfg.Now().Unix(), Data: *sd,
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: webauthn: encoding state: %w", err)
	}
	c := w.cfg.Codec
	name := w.stateCookieName(kind)
	value := sealToString(c.loginAEADs[0], webauthnStateVersion, plain, webauthnStateAD(name))
	clear(plain)
	if len(name)+1+len(value) > maxCookieBytes {
		return nil, nil, fmt.Errorf("authn: webauthn: ceremony state too large for a cookie")
	}
	return optionsJSON, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     c.cfg.LoginCookiePath,
		MaxAge:   int(WebAuthnStateTTL / time.Second),
		Secure:   !c.cfg.Insecure,
		HttpOnly: true,
		// Strict: Finish* is a same-origin fetch from the ceremony page.
		SameSite: http.SameSiteStrictMode,
	}, nil
}

// openState returns the library session data of the request's ceremony
// state cookie after checking that it is authentic, of this kind, for this
// user and session, and younger than WebAuthnStateTTL.
func (w *WebAuthn) openState(r *http.Request, kind string, p identity.Principal) (webauthn.SessionData, error) {
	name := w.stateCookieName(kind)
	var stack [4]string
	values := requestCookieValues(r, name, stack[:0])
	if len(values) == 0 {
		return webauthn.SessionData{}, fmt.Errorf("%w: no %s state cookie", ErrWebAuthnState, kind)
	}
	var firstErr error
	for _, v := range values {
		sd, err := w.openStateValue(name, v, kind, p)
		if err == nil {
			return sd, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return webauthn.SessionData{}, firstErr
}

func (w *WebAuthn) openStateValue(name, value, kind string, p identity.Principal) (webauthn.SessionData, error) {
	if len(value) > maxCookieBytes {
		return webauthn.SessionData{}, fmt.Errorf("%w: cookie too large", ErrWebAuthnState)
	}
	sealed, err := strictBase64.DecodeString(value)
	if err != nil || len(sealed) < sealedOverhead {
		return webauthn.SessionData{}, fmt.Errorf("%w: malformed cookie", ErrWebAuthnState)
	}
	if sealed[0] != webauthnStateVersion {
		return webauthn.SessionData{}, fmt.Errorf("%w: unsupported version %d", ErrWebAuthnState, sealed[0])
	}
	plain, ok := openWithAny(w.cfg.Codec.loginAEADs, nil, sealed[1:13], sealed[13:], webauthnStateAD(name))
	if !ok {
		return webauthn.SessionData{}, fmt.Errorf("%w: not sealed by a configured key", ErrWebAuthnState)
	}
	var st webauthnState
	err = json.Unmarshal(plain, &st)
	clear(plain)
	if err != nil {
		return webauthn.SessionData{}, fmt.Errorf("%w: undecodable", ErrWebAuthnState)
	}
	now := w.cfg.Now()
	created := time.Unix(st.CreatedAt, 0)
	switch {
	case st.Kind != kind:
		return webauthn.SessionData{}, fmt.Errorf("%w: wrong ceremony", ErrWebAuthnState)
	case subtle.ConstantTimeCompare([]byte(st.UserID), []byte(p.ID)) != 1,
		subtle.ConstantTimeCompare(st.Data.UserID, WebAuthnUserHandle(p.ID)) != 1:
		return webauthn.SessionData{}, fmt.Errorf("%w: started by another user", ErrWebAuthnState)
	case st.SessionID != p.SessionID:
		return webauthn.SessionData{}, fmt.Errorf("%w: started in another session", ErrWebAuthnState)
	case now.Sub(created) > WebAuthnStateTTL:
		return webauthn.SessionData{}, fmt.Errorf("%w: expired", ErrWebAuthnState)
	case created.After(now.Add(webauthnStateClockSkew)):
		return webauthn.SessionData{}, fmt.Errorf("%w: created in the future", ErrWebAuthnState)
	case st.Data.Challenge == "":
		return webauthn.SessionData{}, fmt.Errorf("%w: no challenge", ErrWebAuthnState)
	}
	return st.Data, nil
}
