package testenv

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// hostileUserinfo is how the userinfo endpoint misbehaves.
type hostileUserinfo struct {
	// claims, when set, is answered instead of the default document.
	claims      map[string]any
	redirect    string
	status      int
	contentType string
	padding     int
	delay       time.Duration
}

// UserinfoURL is the URL of its userinfo endpoint (named in discovery as
// userinfo_endpoint).
func (h *HostileIdP) UserinfoURL() string { return h.Issuer + "/userinfo" }

// UserinfoRequests counts userinfo requests served (failed ones included).
func (h *HostileIdP) UserinfoRequests() int64 { return h.userinfoRequests.Load() }

// LastUserinfoAuthorization is the Authorization header of the last
// userinfo request.
func (h *HostileIdP) LastUserinfoAuthorization() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastUserinfoAuth
}

// SetUserinfo makes the userinfo endpoint answer claims (nil restores the
// default: the bearer token's own sub, with the user's email,
// email_verified true and username, as Amazon Cognito's /oauth2/userInfo
// answers).
func (h *HostileIdP) SetUserinfo(claims map[string]any) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.claims = claims })
}

// RedirectUserinfo answers userinfo requests with a 302 to url ("" to
// stop).
func (h *HostileIdP) RedirectUserinfo(url string) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.redirect = url })
}

// SetUserinfoStatus makes the userinfo endpoint answer status (401 with an
// RFC 6750 challenge, 503, …) instead of 200; 0 restores 200.
func (h *HostileIdP) SetUserinfoStatus(status int) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.status = status })
}

// SetUserinfoContentType replaces application/json (a signed userinfo is
// application/jwt); "" restores it.
func (h *HostileIdP) SetUserinfoContentType(ct string) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.contentType = ct })
}

// SetUserinfoPadding makes the userinfo answer a valid document with about
// n extra bytes (an ignored member), streamed without Content-Length.
func (h *HostileIdP) SetUserinfoPadding(n int) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.padding = n })
}

// SetUserinfoDelay makes the userinfo endpoint wait d before it answers (a
// hung IdP); it stops waiting when the client goes away.
func (h *HostileIdP) SetUserinfoDelay(d time.Duration) {
	h.edit(func(b *hostileBehaviour) { b.userinfo.delay = d })
}

func (h *HostileIdP) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	h.userinfoRequests.Add(1)
	auth := r.Header.Get("Authorization")
	h.mu.Lock()
	h.lastUserinfoAuth = auth
	user := h.user
	h.mu.Unlock()
	b, _ := h.snapshot()
	ui := b.userinfo
	if ui.delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(ui.delay):
		}
	}
	if misbehave(w, r, ui.redirect, false) {
		return
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "no access token", http.StatusUnauthorized)
		return
	}
	if ui.status != 0 && ui.status != http.StatusOK {
		if ui.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="Access token has been revoked"`)
		}
		http.Error(w, http.StatusText(ui.status), ui.status)
		return
	}
	claims := ui.claims
	if claims == nil {
		claims = map[string]any{
			"sub": unverifiedSub(token), "email": user.Email, "email_verified": "true", "username": user.Sub,
		}
	}
	doc, _ := json.Marshal(claims)
	ct := ui.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	if ui.padding > 0 {
		writePadded(w, doc, ui.padding)
		return
	}
	w.Write(doc)
}

// writePadded writes the JSON object doc with one extra member of about n
// bytes, so the document stays valid however large it gets.
func writePadded(w io.Writer, doc []byte, n int) {
	io.WriteString(w, strings.TrimSuffix(string(doc), "}")+`,"padding":"`)
	chunk := strings.Repeat("a", 64<<10)
	for left := n; left > 0; left -= len(chunk) {
		if _, err := io.WriteString(w, chunk[:min(len(chunk), left)]); err != nil {
			return // the client gave up
		}
	}
	io.WriteString(w, `"}`)
}

// unverifiedSub reads sub from a compact JWS without checking it: the
// hostile IdP answers for whatever token it is shown.
func unverifiedSub(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(payload, &c)
	return c.Sub
}
