package op

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// Paths served by this package next to the library's endpoints.
const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
)

// Cookie names. Cookies are not isolated by port, and the proxy may run on
// the same loopback host, so the names are specific to the demo provider.
const (
	sessionCookie = "ztp_demo_op_session"
	csrfCookie    = "ztp_demo_op_csrf"
)

// session is the provider's own record that a browser has signed in; it
// lets a second sign-in (another tab, or after the proxy's session ends)
// complete without the form, as a real IdP's single sign-on does.
type session struct {
	userID   string
	authTime time.Time
	expires  time.Time
}

// sessions holds the provider's browser sessions by random id.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]session{}}
}

// create starts a session for userID and returns its id.
func (s *sessions) create(userID string, authTime time.Time) (string, error) {
	id, err := randomID()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if s.now().After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = session{userID: userID, authTime: authTime, expires: authTime.Add(s.ttl)}
	return id, nil
}

// get returns the unexpired session with the given id.
func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok || s.now().After(v.expires) {
		return session{}, false
	}
	return v, true
}

// delete ends one session.
func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// deleteUser ends every session of a user.
func (s *sessions) deleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if v.userID == userID {
			delete(s.m, k)
		}
	}
}

// loginHandler serves the demo login page at loginPath.
type loginHandler struct {
	store    *storage
	sessions *sessions
	op       *zop.Provider
	users    []User
	callback func(authRequestID string) string
	// issuer, backchannel and csrfKey serve the account page's "sign out
	// everywhere" (back-channel logout, see backchannel.go).
	issuer      string
	backchannel *http.Client
	csrfKey     [32]byte
}

// ServeHTTP shows the form (GET) or checks the credentials (POST).
func (h *loginHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.get(w, r)
	case http.MethodPost:
		h.post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// get completes the request from an existing session when the request
// allows it, answers prompt=none without a session with login_required, and
// otherwise shows the form.
func (h *loginHandler) get(w http.ResponseWriter, r *http.Request) {
	req, ok := h.store.request(r.URL.Query().Get("authRequestID"))
	if !ok {
		h.expired(w)
		return
	}
	if sess, ok := h.currentSession(r); ok && h.sessionSatisfies(req, sess) {
		if err := h.store.completeRequest(req.id, sess.userID, sess.authTime); err != nil {
			h.expired(w)
			return
		}
		http.Redirect(w, r, h.callback(req.id), http.StatusFound)
		return
	}
	if slices.Contains(req.prompt, oidc.PromptNone) {
		zop.AuthRequestError(w, r, req, oidc.ErrLoginRequired(), h.op)
		return
	}
	h.form(w, r, req, req.loginHint, "", http.StatusOK)
}

// post checks the submitted credentials; a wrong username or password shows
// the form again with an error.
func (h *loginHandler) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	req, ok := h.store.request(r.PostForm.Get("authRequestID"))
	if !ok {
		h.expired(w)
		return
	}
	c, err := r.Cookie(csrfCookie)
	token := r.PostForm.Get("csrf")
	if err != nil || token == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) != 1 {
		h.form(w, r, req, "", "Your sign-in form expired. Please try again.", http.StatusForbidden)
		return
	}
	username := r.PostForm.Get("username")
	user := h.checkPassword(username, r.PostForm.Get("password"))
	if user == nil {
		h.form(w, r, req, username, "Wrong username or password.", http.StatusOK)
		return
	}
	now := h.store.now()
	sid, err := h.sessions.create(user.Sub, now)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := h.store.completeRequest(req.id, user.Sub, now); err != nil {
		h.expired(w)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: now.Add(h.sessions.ttl),
	})
	http.Redirect(w, r, h.callback(req.id), http.StatusSeeOther)
}

// checkPassword returns the user whose username and password match, in
// time that does not depend on which of the two was wrong.
func (h *loginHandler) checkPassword(username, password string) *User {
	u, ok := h.store.byUsername[username]
	want := "\x00no such user\x00"
	if ok {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 || !ok {
		return nil
	}
	return u
}

// currentSession returns the browser's provider session, if any.
func (h *loginHandler) currentSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	return h.sessions.get(c.Value)
}

// sessionSatisfies reports whether an existing session may answer req: not
// when the client asked for prompt=login, nor when the sign-in is older
// than max_age, nor when login_hint names someone else.
func (h *loginHandler) sessionSatisfies(req *authRequest, sess session) bool {
	if slices.Contains(req.prompt, oidc.PromptLogin) || slices.Contains(req.prompt, oidc.PromptSelectAccount) {
		return false
	}
	if req.maxAge != nil && h.store.now().Sub(sess.authTime) > time.Duration(*req.maxAge)*time.Second {
		return false
	}
	u, ok := h.store.users[sess.userID]
	return ok && (req.loginHint == "" || req.loginHint == u.Username || req.loginHint == u.Email)
}

// form renders the login form. The CSRF token is the browser's existing
// one if it has one, so that forms open in several tabs all stay valid.
func (h *loginHandler) form(w http.ResponseWriter, r *http.Request, req *authRequest, username, errMsg string, status int) {
	var token string
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		token = c.Value
	} else if token, err = randomID(); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: token, Path: loginPath, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, loginPage{
		RequestID: req.id, CSRF: token, Client: req.clientID,
		Username: username, Error: errMsg, Users: h.users,
	})
}

// expired explains that the sign-in request is unknown or too old.
func (h *loginHandler) expired(w http.ResponseWriter) {
	w.WriteHeader(http.StatusBadRequest)
	_ = messageTmpl.Execute(w, messagePage{
		Title: "Sign-in request expired",
		Text:  "This sign-in request is unknown or has expired. Go back to the application and start again.",
	})
}

// loggedOut is the page shown after logout when the client named no
// registered post_logout_redirect_uri.
func (h *loginHandler) loggedOut(w http.ResponseWriter, _ *http.Request) {
	setPageHeaders(w)
	_ = messageTmpl.Execute(w, messagePage{Title: "Signed out", Text: "You have signed out of the demo identity provider."})
}

// endSession wraps the library's end_session endpoint: it first ends the
// browser's provider session and clears its cookie, then lets the library
// validate post_logout_redirect_uri, revoke the client's tokens and
// redirect.
func (h *loginHandler) endSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			h.sessions.delete(c.Value)
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
		}
		next.ServeHTTP(w, r)
	})
}

// setPageHeaders sets the headers every HTML page of the provider carries.
// The CSP has no form-action directive on purpose: browsers apply it to the
// redirects after the form is posted, which go to the relying party.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// loginPage is the data of the login template.
type loginPage struct {
	RequestID, CSRF, Client, Username, Error string
	Users                                    []User
}

// messagePage is the data of the message template.
type messagePage struct{ Title, Text string }

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{template "title" .}} · ztproxy demo identity provider</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
.banner{background:#b42318;color:#fff;text-align:center;padding:.6rem 1rem;font-weight:600;letter-spacing:.01em}
main{max-width:24rem;margin:3rem auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem}
h1{font-size:1.3rem;margin:0 0 .4rem}
p.sub{color:#5b6475;margin:0 0 1.5rem;font-size:.92rem}
label{display:block;font-size:.85rem;font-weight:600;margin:.9rem 0 .3rem}
input{width:100%;box-sizing:border-box;padding:.6rem .7rem;border:1px solid #c8cdd6;border-radius:6px;font-size:1rem}
button{margin-top:1.4rem;width:100%;padding:.7rem;border:0;border-radius:6px;background:#2f5bea;color:#fff;font-size:1rem;font-weight:600;cursor:pointer}
.error{background:#fdecea;color:#8a1c12;border:1px solid #f5c2bd;border-radius:6px;padding:.6rem .8rem;margin-bottom:1rem;font-size:.9rem}
.users{margin-top:1.6rem;font-size:.85rem;color:#5b6475}
.users code{background:#eef0f4;padding:.05rem .3rem;border-radius:4px;color:#1d2330}
</style></head><body>
<div class="banner" role="alert">ztproxy demo identity provider — NOT for production</div>
<main>`

var loginTmpl = template.Must(template.New("login").Parse(pageHead + `
{{define "title"}}Sign in{{end}}
<h1>Sign in</h1>
<p class="sub">to continue to <strong>{{.Client}}</strong></p>
{{if .Error}}<div class="error" id="error" role="alert">{{.Error}}</div>{{end}}
<form method="post" action="/login" autocomplete="off">
<input type="hidden" name="authRequestID" value="{{.RequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button id="submit" type="submit">Sign in</button>
</form>
<div class="users">Demo users (passwords are printed when <code>ztproxy demo</code> starts):
<ul>{{range .Users}}<li><code>{{.Username}}</code>{{if .Groups}} — groups: {{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}{{else}} — no groups{{end}}</li>{{end}}</ul></div>
</main></body></html>
`))

var messageTmpl = template.Must(template.New("message").Parse(pageHead + `
{{define "title"}}{{.Title}}{{end}}
<h1>{{.Title}}</h1>
<p class="sub">{{.Text}}</p>
</main></body></html>
`))
