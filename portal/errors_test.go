package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// TestWriteErrorStoreAndSignInPages: issue 22.6 (a session store outage on
// whoami or sign-in was a generic 500) and issue 22.5 / 12.10 (sign-in
// pages say what happened). Each error becomes the status, audit code and
// page a user can act on.
func TestWriteErrorStoreAndSignInPages(t *testing.T) {
	storeDown := fmt.Errorf("authn: checking session revocation: %w: %w", authn.ErrStoreUnavailable, errors.New("dial tcp: connection refused"))
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		want   []string
	}{
		{"store unavailable", storeDown, 503, "session_store_unavailable",
			[]string{"Temporarily unavailable", "session store cannot be reached", "nothing was granted"}},
		{"sign-in refused", &authn.SignInError{Status: 400, Code: "idp_refused", Title: "Sign-in refused by the identity provider", Description: "refused the sign-in code"}, 400, "idp_refused",
			[]string{"Sign-in refused by the identity provider", "Start again"}},
		{"IdP timeout", &authn.SignInError{Status: 504, Code: "idp_timeout", Title: "Identity provider not responding", Description: "did not answer in time"}, 504, "idp_timeout",
			[]string{"Identity provider not responding", "Start again"}},
		{"pending sign-out", &decide.Error{Status: 202, Code: "revocation_pending", Title: "Signed out on this server", Msg: "other servers follow", Link: "https://idp.example/logout", LinkText: "Finish signing out"}, 202, "revocation_pending",
			[]string{"Signed out on this server", `href="https://idp.example/logout"`, "Finish signing out"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "https://ztp.example.com/.ztp/whoami", nil)
			req.Header.Set("Accept", "text/html")
			status := WriteError(rec, req, tc.err, "req-1")
			if _, code := decide.StatusOf(tc.err); status != tc.status || rec.Code != tc.status || code != tc.code {
				t.Fatalf("status %d/%d code %s, want %d %s", status, rec.Code, code, tc.status, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("page lacks %q:\n%s", w, rec.Body.String())
				}
			}
			if strings.Contains(rec.Body.String(), "connection refused") {
				t.Error("the page shows internal details")
			}
		})
	}
	if _, code := decide.StatusOf(&decide.LoginNeeded{Code: "refresh_refused"}); code != "refresh_refused" {
		t.Errorf("loginNeeded code: %s", code)
	}
	if st, code := decide.StatusOf(&decide.LoginNeeded{}); st != http.StatusUnauthorized || code != "login_required" {
		t.Errorf("loginNeeded default: %d %s", st, code)
	}
}

// TestDenialPageExplains: issue 15.9, the denial page said "access denied
// by policy" and a request id, but not who was signed in, who the route
// is for, or where to go next.
func TestDenialPageExplains(t *testing.T) {
	bob := identity.Principal{Kind: identity.KindUser, ID: "http://127.0.0.1:8444#bob", Email: "bob@demo.test", Name: "Bob Contractor",
		Groups: []string{"contractors"}, AuthKind: identity.AuthBrowser}
	denied := &decide.Denied{Principal: bob, Route: "app", Decision: identity.Decision{Effect: identity.Deny,
		Reasons: []string{"no policy permits this request"}, Hints: []string{"the app is for engineers (group eng)"}}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://localhost:8443/hello", nil)
	req.Header.Set("Accept", "text/html")
	if status := WriteError(rec, req, denied, "req-1"); status != 403 {
		t.Fatalf("status %d", status)
	}
	page := rec.Body.String()
	for _, want := range []string{"Access denied", "signed in as bob@demo.test (Bob Contractor)", "no policy permits this request",
		"Who may use this", "the app is for engineers (group eng)", "ask your administrator", `href="/.ztp/whoami"`,
		`href="/.ztp/logout"`, "Sign in as someone else", "req-1"} {
		if !strings.Contains(page, want) {
			t.Errorf("denial page lacks %q:\n%s", want, page)
		}
	}
	// A bearer caller gets JSON, without the page's text.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "https://localhost:8443/api", nil)
	bob.AuthKind = identity.AuthBearer
	WriteError(rec, req, &decide.Denied{Principal: bob, Bearer: true, Decision: denied.Decision}, "req-2")
	if body := rec.Body.String(); !strings.Contains(body, `"error":"forbidden"`) || strings.Contains(body, "Bob") {
		t.Errorf("bearer denial body %s", body)
	}
}
