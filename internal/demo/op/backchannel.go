package op

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The account page lets a signed-in demo user sign out everywhere: the
// provider ends the user's sessions and tokens and sends an OpenID Connect
// Back-Channel Logout token (sub only) to every client that registered a
// BackchannelLogoutURI, as a real IdP's "sign out of all devices" does.
const (
	accountPath            = "/account"
	signOutEverywherePath  = "/account/signout-everywhere"
	backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// csrfToken binds the account page's form to the browser's provider
// session: an HMAC of the session id under the provider's key.
func (h *loginHandler) csrfToken(sessionID string) string {
	mac := hmac.New(sha256.New, h.csrfKey[:])
	mac.Write([]byte("signout-everywhere\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// account shows who is signed in, with the "sign out everywhere" button,
// and handles the button's POST.
func (h *loginHandler) account(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w)
	c, err := r.Cookie(sessionCookie)
	var sess session
	ok := err == nil
	if ok {
		sess, ok = h.sessions.get(c.Value)
	}
	if !ok {
		_ = messageTmpl.Execute(w, messagePage{Title: "Not signed in", Text: "You are not signed in to the demo identity provider."})
		return
	}
	u := h.store.users[sess.userID]
	if r.Method == http.MethodPost && r.URL.Path == signOutEverywherePath {
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(h.csrfToken(c.Value))) {
			w.WriteHeader(http.StatusForbidden)
			_ = messageTmpl.Execute(w, messagePage{Title: "Refused", Text: "This form is not from your session; open the account page again."})
			return
		}
		sent := h.signOutEverywhere(r.Context(), sess.userID)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
		_ = messageTmpl.Execute(w, messagePage{Title: "Signed out everywhere",
			Text: fmt.Sprintf("Your sessions and tokens at the demo identity provider have ended, and %d application(s) were told to end theirs (OpenID Connect Back-Channel Logout).", sent)})
		return
	}
	_ = accountTmpl.Execute(w, struct{ Name, Username, CSRF, Action string }{u.Name, u.Username, h.csrfToken(c.Value), signOutEverywherePath})
}

// signOutEverywhere ends the user's provider sessions and tokens and
// notifies the clients; it returns how many acknowledged.
func (h *loginHandler) signOutEverywhere(ctx context.Context, userID string) int {
	h.sessions.deleteUser(userID)
	h.store.mu.Lock()
	h.store.revokeLocked(userID, "")
	var uris []struct{ client, uri string }
	for id, c := range h.store.clients {
		if c.cfg.BackchannelLogoutURI != "" {
			uris = append(uris, struct{ client, uri string }{id, c.cfg.BackchannelLogoutURI})
		}
	}
	h.store.mu.Unlock()
	sent := 0
	for _, u := range uris {
		if err := h.sendLogoutToken(ctx, u.client, u.uri, userID); err == nil {
			sent++
		}
	}
	return sent
}

// sendLogoutToken POSTs a logout token for sub to a client's
// backchannel_logout_uri.
func (h *loginHandler) sendLogoutToken(ctx context.Context, clientID, uri, sub string) error {
	jti, err := randomID()
	if err != nil {
		return err
	}
	now := h.store.now().UTC()
	claims, _ := json.Marshal(map[string]any{
		"iss": h.issuer, "aud": clientID, "sub": sub, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": jti,
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	})
	key := h.store.key
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", key.id))
	if err != nil {
		return err
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return err
	}
	tok, _ := jws.CompactSerialize()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewBufferString(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.backchannel.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("back-channel logout to %s: %s", uri, resp.Status)
	}
	return nil
}

var accountTmpl = template.Must(template.New("account").Parse(pageHead + `
{{define "title"}}Your account{{end}}
<h1>Signed in as {{.Name}}</h1>
<p class="sub">{{.Username}} at the demo identity provider.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" id="signout-everywhere">Sign out everywhere</button>
</form>
<p class="sub">Ends your sessions here and tells every application (ztproxy included) to end yours at once.</p>
</main></body></html>
`))
