package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const riskStepUpPolicies = `
@id("eng-uses-app")
permit (principal, action, resource) when { principal in Group::"eng" };

@id("medium-risk-needs-fresh-mfa")
@step_up("mfa")
@reason("this request looks unusual for you; confirm with your second factor")
forbid (principal, action, resource)
when { context.risk.level == "medium" && !(context.auth.mfa && context.auth.age_seconds < 900) };
`

// xffTransport sends the client address a trusted front proxy would
// report, for requests to the proxy only.
type xffTransport struct {
	base http.RoundTripper
	host string
	ip   atomic.Value // string
}

func (x *xffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == x.host {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", x.ip.Load().(string))
	}
	return x.base.RoundTrip(r)
}

// TestBrowserStepUpOnRisk: with the real binary, the real OP and the
// risk engine on the embedded store, a user known from the office
// network is let in without questions; the same session from a new
// network (reported by a trusted front proxy) scores medium and is sent
// to step up at the IdP (prompt=login, max_age=0, acr_values); after
// the second factor the request passes.
func TestBrowserStepUpOnRisk(t *testing.T) {
	e := newStepUpEnv(t, "127.0.0.1", riskStepUpPolicies, `trusted_proxies: ["127.0.0.1"]
risk: {thresholds: {medium: 20, high: 90}, unknown_user_score: 1, profile_ttl: 300ms, flush_interval: 200ms}
`)
	alice := e.op.User(t, "alice")
	c := e.client(t)
	base, _ := url.Parse(e.base)
	xff := &xffTransport{base: c.Transport, host: base.Host}
	xff.ip.Store("203.0.113.10") // the office
	c.Transport = xff

	// Password only: a new user scores 1 (low) and the profile learns the
	// office network. (With a second factor in the last 15 minutes a
	// medium-risk request teaches the profile too, so no MFA here.)
	resp := e.op.Login(t, c, e.base+"/home", alice, false)
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "GET /home for alice@ztp.test" {
		t.Fatalf("first sign-in: %d %s", resp.StatusCode, body)
	}
	whoamiRisk := func() (level string, reasons string) {
		req, _ := http.NewRequest("GET", e.base+"/.ztp/whoami", nil)
		req.Header.Set("Accept", "application/json")
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Risk struct {
				Level   string `json:"level"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			} `json:"risk"`
		}
		_ = json.NewDecoder(r.Body).Decode(&info)
		r.Body.Close()
		var codes []string
		for _, rr := range info.Risk.Reasons {
			codes = append(codes, rr.Code)
		}
		return info.Risk.Level, strings.Join(codes, ",")
	}
	waitFor(t, 10*time.Second, "alice's profile with the office network", func() bool {
		level, reasons := whoamiRisk()
		return level == "low" && !strings.Contains(reasons, "new_user")
	})

	// The same session from a new network: medium risk → step-up.
	xff.ip.Store("198.51.100.23")
	if level, reasons := whoamiRisk(); level != "medium" || !strings.Contains(reasons, "new_network") {
		t.Fatalf("new network scored %s (%s)", level, reasons)
	}
	req, _ := http.NewRequest("GET", e.base+"/home?from=cafe", nil)
	req.Header.Set("Accept", "text/html")
	r, err := noFollow(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, r)
	stepUp, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || stepUp.Path != "/.ztp/stepup" || stepUp.Query().Get("req") != "mfa" {
		t.Fatalf("new network: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r, err = noFollow(c).Get(stepUp.String())
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, r)
	authz, _ := url.Parse(r.Header.Get("Location"))
	q := authz.Query()
	if !strings.HasPrefix(authz.String(), e.op.Issuer) || q.Get("prompt") != "login" || q.Get("max_age") != "0" || q.Get("acr_values") != "urn:ztp:loa:mfa" {
		t.Fatalf("step-up authorization request: %s", authz)
	}
	// The second factor at the IdP brings the user back to the exact URL.
	resp = e.op.Login(t, c, authz.String(), alice, true)
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "GET /home for alice@ztp.test" || resp.Request.URL.String() != e.base+"/home?from=cafe" {
		t.Fatalf("after step-up: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	out := e.proc.output()
	if !strings.Contains(out, `"decision":"step_up"`) || !strings.Contains(out, `{"code":"new_network","points":25}`) {
		t.Fatalf("audit lacks the risk step-up:\n%s", out)
	}
}
