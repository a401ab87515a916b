package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserTestSite is a small web app: a login form that posts, sets a cookie
// and redirects, plus pages for status codes, scripts and host names.
func browserTestSite(t *testing.T) (*httptest.Server, func() string) {
	t.Helper()
	var mu sync.Mutex
	var lastHost string
	page := func(w http.ResponseWriter, status int, title, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body>%s</body></html>", title, body)
	}
	session := func(r *http.Request) string {
		if c, err := r.Cookie("sid"); err == nil {
			return c.Value
		}
		return ""
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastHost = r.Host
		mu.Unlock()
		s := session(r)
		if s == "" {
			s = "none"
		}
		page(w, 200, "Home", "<h1>Home</h1><p>host "+html.EscapeString(r.Host)+"</p><p>session "+html.EscapeString(s)+"</p>")
	})
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		page(w, 200, "Login", `<form method="post" action="/login">
<input name="username" value="prefilled"> <input name="password" type="password">
<label><input id="remember" type="checkbox" name="remember" value="1"> remember</label>
<button id="submit" type="submit">Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("password") != "pw" {
			page(w, 401, "Login", `<p id="error">bad password</p>`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: r.PostFormValue("username") + "." + r.PostFormValue("remember"), Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/welcome", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /welcome", func(w http.ResponseWriter, r *http.Request) {
		page(w, 200, "Welcome", "<p>Welcome "+html.EscapeString(session(r))+"</p>")
	})
	mux.HandleFunc("GET /script", func(w http.ResponseWriter, r *http.Request) {
		page(w, 200, "Script", `<button id="btn" onclick="document.getElementById('out').textContent='clicked'">go</button>
<p id="out">idle</p><a id="later" href="#" onclick="setTimeout(() => location.href = '/welcome', 200); return false">later</a>`)
	})
	mux.HandleFunc("GET /link", func(w http.ResponseWriter, r *http.Request) {
		page(w, 200, "Link", `<a id="go" href="`+html.EscapeString(r.FormValue("to"))+`">go</a>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, func() string { mu.Lock(); defer mu.Unlock(); return lastHost }
}

// timed logs how long the (sub)test took.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("took %v", time.Since(start).Round(time.Millisecond)) })
}

func TestBrowser(t *testing.T) {
	timed(t)
	srv, lastHost := browserTestSite(t)
	b := StartBrowser(t, BrowserOptions{HostResolverRules: "MAP *.ztp.test 127.0.0.1"})

	t.Run("FormFlow", func(t *testing.T) {
		timed(t)
		tab := b.NewTab(t)
		tab.Navigate(t, srv.URL+"/form")
		if got := tab.Status(t); got != 200 {
			t.Errorf("Status = %d, want 200", got)
		}
		tab.LoginForm(t, "alice", "wrong", "")
		if got, want := tab.Status(t), 401; got != want {
			t.Errorf("Status after a wrong password = %d, want %d", got, want)
		}
		tab.WaitText(t, "bad password", time.Second)

		tab.Navigate(t, srv.URL+"/form")
		tab.LoginForm(t, "alice", "pw", "#remember")
		if got, want := tab.URL(t), srv.URL+"/welcome"; got != want {
			t.Errorf("URL = %q, want %q", got, want)
		}
		if got := tab.Text(t); !strings.Contains(got, "Welcome alice.1") {
			t.Errorf("Text = %q, want Welcome alice.1", got)
		}
		if got := tab.Status(t); got != 200 {
			t.Errorf("Status = %d, want 200", got)
		}
		c := tab.Cookie(t, srv.URL, "sid")
		if c == nil || c.Value != "alice.1" || !c.HTTPOnly {
			t.Errorf("cookie sid = %+v, want alice.1, HttpOnly", c)
		}
		if h := tab.HTML(t); !strings.Contains(h, "<title>Welcome</title>") {
			t.Errorf("HTML = %q", h)
		}
	})

	t.Run("StatusAndLoadErrors", func(t *testing.T) {
		timed(t)
		tab := b.NewTab(t)
		tab.Navigate(t, srv.URL+"/missing")
		if got := tab.Status(t); got != 404 {
			t.Errorf("Status = %d, want 404", got)
		}
		dead := "http://127.0.0.1:" + fmt.Sprint(FreePort(t)) + "/x?y=1"
		err := tab.TryNavigate(dead)
		var le *chromedp.LoadError
		if !errors.As(err, &le) || !strings.Contains(le.ErrorText, "ERR_CONNECTION_REFUSED") {
			t.Errorf("TryNavigate(refused) = %v, want a LoadError ERR_CONNECTION_REFUSED", err)
		}
		if got := tab.URL(t); got != dead {
			t.Errorf("URL after a failed load = %q, want %q", got, dead)
		}
		if got := tab.Status(t); got != 0 {
			t.Errorf("Status after a failed load = %d, want 0", got)
		}
	})

	t.Run("ScriptsAndClicks", func(t *testing.T) {
		timed(t)
		tab := b.NewTab(t)
		tab.Navigate(t, srv.URL+"/script")
		start := time.Now()
		tab.Click(t, "#btn") // no navigation: returns after the grace period
		t.Logf("click without navigation took %v", time.Since(start).Round(time.Millisecond))
		tab.WaitText(t, "clicked", time.Second)
		tab.Click(t, "#later") // the script navigates 200 ms later
		tab.WaitURLPrefix(t, srv.URL+"/welcome", 5*time.Second)

		var n int
		tab.Eval(t, "1 + 2", &n)
		var obj struct{ A []string }
		tab.Eval(t, `Promise.resolve({A: ["x", "y"]})`, &obj)
		var undef any = "unchanged"
		tab.Eval(t, "undefined", &undef)
		if n != 3 || len(obj.A) != 2 || undef != nil {
			t.Errorf("Eval = %d, %+v, %v", n, obj, undef)
		}
		tab.Eval(t, "document.title = 'changed'", nil)

		png := filepath.Join(t.TempDir(), "shot.png")
		tab.Screenshot(t, png)
		if data, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("screenshot: %v, %d bytes", err, len(data))
		}
	})

	t.Run("CookieJars", func(t *testing.T) {
		timed(t)
		a := b.NewTab(t)
		a.SetCookie(t, srv.URL, "sid", "planted")
		b2 := b.NewTab(t) // same browser context: sees the cookie
		b2.Navigate(t, srv.URL+"/")
		b2.WaitText(t, "session planted", time.Second)

		inc := b.NewIncognito(t) // own jar: does not
		inc.Navigate(t, srv.URL+"/")
		inc.WaitText(t, "session none", time.Second)
		inc.SetCookie(t, srv.URL, "sid", "incognito")
		inc2 := inc.NewTab(t) // shares the incognito jar
		inc2.Navigate(t, srv.URL+"/")
		inc2.WaitText(t, "session incognito", time.Second)

		a.DeleteCookies(t)
		if got := b2.Cookies(t, srv.URL); len(got) != 0 {
			t.Errorf("cookies after DeleteCookies = %v, want none", got)
		}
		if c := inc.Cookie(t, srv.URL, "sid"); c == nil || c.Value != "incognito" {
			t.Errorf("incognito cookie after DeleteCookies in the default context = %+v", c)
		}
	})

	t.Run("CertErrors", func(t *testing.T) {
		timed(t)
		tls := httptest.NewTLSServer(http.NotFoundHandler())
		t.Cleanup(tls.Close)
		err := b.NewTab(t).TryNavigate(tls.URL)
		var le *chromedp.LoadError
		if !errors.As(err, &le) || !strings.Contains(le.ErrorText, "ERR_CERT_AUTHORITY_INVALID") {
			t.Errorf("TryNavigate(untrusted TLS) = %v, want ERR_CERT_AUTHORITY_INVALID", err)
		}
	})

	t.Run("HostResolverRules", func(t *testing.T) {
		timed(t)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		u := "http://app.ztp.test:" + port + "/"
		tab := b.NewTab(t)
		tab.SetCookie(t, u, "sid", "app")
		tab.Navigate(t, srv.URL+"/link?to="+url.QueryEscape(u))
		tab.Click(t, "#go") // to another site: a new renderer process
		if got := tab.Text(t); !strings.Contains(got, "session app") {
			t.Errorf("Text after a cross-site click = %q, want session app", got)
		}
		if got := tab.Status(t); got != 200 {
			t.Errorf("Status after a cross-site click = %d, want 200", got)
		}
		if got, want := lastHost(), "app.ztp.test:"+port; got != want {
			t.Errorf("Host = %q, want %q", got, want)
		}
		if got := tab.URL(t); got != u {
			t.Errorf("URL = %q, want %q", got, u)
		}
		if c := tab.Cookie(t, srv.URL, "sid"); c != nil {
			t.Errorf("cookie of app.ztp.test sent to 127.0.0.1: %+v", c)
		}
	})
}

// browserAuthorizeURL is an authorization request for client with PKCE S256.
func browserAuthorizeURL(p *OIDCProvider, client OIDCClient, state string) string {
	sum := sha256.Sum256([]byte("browser-test-verifier-0123456789-abcdefghijklmnop"))
	return p.AuthorizationEndpoint + "?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ID},
		"redirect_uri":          {client.RedirectURIs[0]},
		"scope":                 {"openid"},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}.Encode()
}

func TestBrowserOIDCLogin(t *testing.T) {
	timed(t)
	op := StartOIDC(t, OIDCOptions{})
	// IgnoreCertErrors plays no part in the login (the OP speaks http); it
	// is checked at the end, to save starting one more browser.
	b := StartBrowser(t, BrowserOptions{IgnoreCertErrors: true})
	tab := b.NewTab(t)
	client, user := op.Client(t, "ztproxy"), op.User(t, "alice")

	tab.Navigate(t, browserAuthorizeURL(op, client, "st4te"))
	if !strings.HasPrefix(tab.URL(t), op.Issuer+"/interaction/") {
		t.Fatalf("authorize ended at %s, want the login page", tab.URL(t))
	}
	tab.LoginForm(t, user.Sub, "wrong", "")
	var errShown bool
	tab.Eval(t, `!!document.querySelector("#error")`, &errShown)
	if !errShown {
		t.Errorf("wrong password: no #error on the page:\n%s", tab.Text(t))
	}

	tab.LoginForm(t, user.Sub, user.Password, "#mfa")
	// The OP redirects to http://127.0.0.1/.ztp/callback, where nothing needs
	// to listen: the history entry keeps the URL of a failed load.
	tab.WaitURLPrefix(t, "http://127.0.0.1/.ztp/callback?code=", 5*time.Second)
	cb, err := url.Parse(tab.URL(t))
	if err != nil || cb.Query().Get("state") != "st4te" || cb.Query().Get("iss") != op.Issuer {
		t.Errorf("callback URL %s: want state st4te and iss %s (%v)", tab.URL(t), op.Issuer, err)
	}

	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<p>tls ok</p>")
	}))
	t.Cleanup(tls.Close)
	tab.Navigate(t, tls.URL)
	tab.WaitText(t, "tls ok", time.Second)
}
