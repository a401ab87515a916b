package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

var requestIDOnPage = regexp.MustCompile(`request id <code>([0-9a-f]+)</code>`)

// auditError returns the "error" field of the audit line of the request
// whose id the page shows (audit lines are written in batches: it waits).
func auditError(t *testing.T, p *proc, page string) string {
	t.Helper()
	m := requestIDOnPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no request id on the page:\n%s", page)
	}
	var line string
	waitFor(t, 5*time.Second, "the audit line of request "+m[1], func() bool {
		for _, l := range strings.Split(p.output(), "\n") {
			if strings.Contains(l, `"log":"audit"`) && strings.Contains(l, `"request_id":"`+m[1]+`"`) {
				line = l
				return true
			}
		}
		return false
	})
	var rec struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Error
}

// pendingCallback starts a sign-in in a new jar and has alice approve it
// at the OP; the callback is left for the test to make.
func (e *browserEnv) pendingCallback(t *testing.T) (*http.Client, *url.URL) {
	t.Helper()
	c := e.client(t)
	return c, e.authorize(t, e.startLogin(t, c).String(), e.op.User(t, "alice"))
}

// htmlGet fetches u as a browser page load, without following redirects.
func htmlGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noFollow(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// TestBrowserIdPRefusedOrUnreachable: issue 22.5, the callback page said
// "the identity provider did not accept the sign-in code" when the IdP
// could not be reached. A refusal (400, idp_refused), a hung IdP (504 after
// the 10 s client timeout, idp_timeout) and a stopped one (503,
// idp_unreachable) are told apart on the page and in the audit line; a
// session whose refresh meets a hung or stopped IdP is kept (and the log
// says which). Real binary, real npm oidc-provider, frozen with SIGSTOP and
// then stopped.
func TestBrowserIdPRefusedOrUnreachable(t *testing.T) {
	// 2-second ID tokens: every request of a signed-in session refreshes.
	e := newBrowserEnv(t, testenv.OIDCOptions{IDTokenTTL: 2 * time.Second}, "1h")
	alice := e.op.User(t, "alice")
	signedIn := func() *http.Client {
		c := e.client(t)
		if resp := e.op.Login(t, c, e.base+"/hello", alice, false); readBody(t, resp) != "app says hello to alice@ztp.test" {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		return c
	}
	refreshDuringHang, refreshDuringStop := signedIn(), signedIn()
	hungJar, hungCallback := e.pendingCallback(t)
	downJar, downCallback := e.pendingCallback(t)

	t.Run("refused code", func(t *testing.T) {
		c := e.client(t)
		q := url.Values{"code": {"not-a-code-the-op-issued"}, "state": {e.startLogin(t, c).Query().Get("state")}, "iss": {e.op.Issuer}}
		resp, page := htmlGet(t, c, e.base+"/.ztp/callback?"+q.Encode())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "refused the sign-in code (invalid_grant)") ||
			strings.Contains(page, "cannot be reached") || auditError(t, e.proc, page) != "idp_refused" {
			t.Fatalf("%d %s", resp.StatusCode, page)
		}
	})
	t.Run("hung IdP", func(t *testing.T) {
		e.op.Pause(t)
		defer e.op.Resume(t)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The session outlives a refresh the IdP does not answer.
			if resp, body := htmlGet(t, refreshDuringHang, e.base+"/hello"); resp.StatusCode != 200 {
				t.Errorf("refresh against a hung IdP: %d %s", resp.StatusCode, body)
			}
		}()
		start := time.Now()
		resp, page := htmlGet(t, hungJar, hungCallback.String())
		took := time.Since(start)
		wg.Wait()
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(page, "did not answer in time") ||
			strings.Contains(page, "refused") || auditError(t, e.proc, page) != "idp_timeout" {
			t.Fatalf("%d %s", resp.StatusCode, page)
		}
		if took > 15*time.Second {
			t.Errorf("the callback took %v; the IdP client timeout is 10 s", took)
		}
		if !strings.Contains(e.proc.output(), `"code":"idp_timeout"`) {
			t.Errorf("no refresh failure logged as idp_timeout:\n%s", e.proc.output())
		}
	})
	t.Run("stopped IdP", func(t *testing.T) {
		e.op.Stop()
		resp, page := htmlGet(t, downJar, downCallback.String())
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "cannot be reached") ||
			strings.Contains(page, "refused") || auditError(t, e.proc, page) != "idp_unreachable" {
			t.Fatalf("%d %s", resp.StatusCode, page)
		}
		if resp, body := htmlGet(t, refreshDuringStop, e.base+"/hello"); resp.StatusCode != 200 {
			t.Errorf("refresh against a stopped IdP: %d %s", resp.StatusCode, body)
		}
		if !strings.Contains(e.proc.output(), `"code":"idp_unreachable"`) {
			t.Errorf("no refresh failure logged as idp_unreachable:\n%s", e.proc.output())
		}
	})
}
