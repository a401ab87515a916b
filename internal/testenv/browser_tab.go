package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserPollInterval is how often WaitURLPrefix and WaitText look again.
const browserPollInterval = 50 * time.Millisecond

// runTab runs one action on the tab with the action timeout.
func runTab[T any](tb *Tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, tb.timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// callTab sends one protocol command to the tab with the action timeout.
func callTab[P, R any](tb *Tab, cmd cdp.Command[P, R], params P) (R, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, tb.timeout)
	defer cancel()
	return chromedp.Call(ctx, cmd, params)
}

// Navigate loads url in the tab and waits until the page has loaded. A
// navigation that fails, such as a refused connection or a rejected
// certificate, stops the test; use TryNavigate to check for that.
func (tb *Tab) Navigate(t testing.TB, url string) {
	t.Helper()
	if err := tb.TryNavigate(url); err != nil {
		tb.fatal(t, "navigating to "+url, err)
	}
}

// TryNavigate is like Navigate but returns the error. A page that does not
// load gives a *chromedp.LoadError, whose text is the net error, for example
// "net::ERR_CERT_AUTHORITY_INVALID".
func (tb *Tab) TryNavigate(url string) error {
	_, err := runTab(tb, chromedp.Navigate(url))
	var le *chromedp.LoadError
	if errors.As(err, &le) {
		// Page.navigate reports the error before the error page commits,
		// and until then the tab answers "Not attached to an active page".
		_, _ = tb.tryURL(tb.timeout)
	}
	return err
}

// URL returns the URL of the tab's current history entry. For an error page
// this is the URL that failed to load, not chrome-error://.
func (tb *Tab) URL(t testing.TB) string {
	t.Helper()
	u, err := tb.tryURL(tb.timeout)
	if err != nil {
		t.Fatalf("testenv: browser: reading the URL: %v", err)
	}
	return u
}

// Text returns document.body.innerText: the text of the page as a user sees
// it.
func (tb *Tab) Text(t testing.TB) string {
	t.Helper()
	s, err := tb.tryText()
	if err != nil {
		tb.fatal(t, "reading the page text", err)
	}
	return s
}

func (tb *Tab) tryText() (string, error) {
	return runTab(tb, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// HTML returns the outer HTML of the document element.
func (tb *Tab) HTML(t testing.TB) string {
	t.Helper()
	s, err := runTab(tb, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
	if err != nil {
		tb.fatal(t, "reading the page HTML", err)
	}
	return s
}

// Fill waits until the input that the CSS selector matches is visible,
// focuses and clears it, and inserts value as typed text (Input.insertText:
// input events, no key events). Use Type for key events.
func (tb *Tab) Fill(t testing.TB, selector, value string) {
	t.Helper()
	sel := chromedp.CSS(selector)
	q, _ := json.Marshal(selector)
	// chromedp.SetValue(sel, "") cannot clear: it sets the value "undefined".
	clear := fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.focus(); el.value = "";
		el.dispatchEvent(new Event("input", {bubbles: true})); })()`, q)
	insert := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		if value == "" {
			return nil
		}
		_, err := cdp.Call(ctx, target, input.InsertText, input.InsertTextParams{Text: value})
		return err
	})
	if _, err := runTab(tb, chromedp.Steps(chromedp.WaitVisible(sel), chromedp.Evaluate[chromedp.Void](clear), insert)); err != nil {
		tb.fatal(t, "filling "+selector, err)
	}
}

// Type focuses the element that the CSS selector matches and sends keys as key
// events, after any text it already has. "\n" presses Enter, which submits a
// form; Type does not wait for that navigation (use WaitURLPrefix).
func (tb *Tab) Type(t testing.TB, selector, keys string) {
	t.Helper()
	if _, err := runTab(tb, chromedp.SendKeys(chromedp.CSS(selector), keys)); err != nil {
		tb.fatal(t, "typing into "+selector, err)
	}
}

// SetChecked clicks the checkbox or radio button that the CSS selector matches
// when its checked state is not already checked.
func (tb *Tab) SetChecked(t testing.TB, selector string, checked bool) {
	t.Helper()
	sel := chromedp.CSS(selector)
	cur, err := runTab(tb, chromedp.JavascriptAttribute[bool](sel, "checked"))
	if err == nil && cur != checked {
		_, err = runTab(tb, chromedp.Click(sel))
	}
	if err != nil {
		tb.fatal(t, fmt.Sprintf("setting %s to checked=%v", selector, checked), err)
	}
}

// Click waits until the element that the CSS selector matches is visible and
// clicks it with the mouse. When the click starts a main-frame navigation (a
// link or a form submission, with all its HTTP redirects), Click waits until
// the new page has loaded, or has failed to load. A navigation that a script
// starts later, after the next page has loaded, needs WaitURLPrefix.
func (tb *Tab) Click(t testing.TB, selector string) {
	t.Helper()
	err := tb.actAndWait(func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector)))
	})
	if err != nil {
		tb.fatal(t, "clicking "+selector, err)
	}
}

// Submit submits the form that the CSS selector matches (or the form of the
// element it matches) without a click, and waits for the navigation as Click
// does.
func (tb *Tab) Submit(t testing.TB, selector string) {
	t.Helper()
	err := tb.actAndWait(func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Submit(chromedp.CSS(selector)))
	})
	if err != nil {
		tb.fatal(t, "submitting "+selector, err)
	}
}

// LoginForm fills in and submits a login form such as the test OP's:
// input[name=username], input[name=password], the optional checkbox
// extraCheckbox (a CSS selector, ticked when not empty, for example "#mfa"),
// and the button #submit. It waits for the navigation that the submission
// starts.
func (tb *Tab) LoginForm(t testing.TB, username, password, extraCheckbox string) {
	t.Helper()
	tb.Fill(t, "input[name=username]", username)
	tb.Fill(t, "input[name=password]", password)
	if extraCheckbox != "" {
		tb.SetChecked(t, extraCheckbox, true)
	}
	tb.Click(t, "#submit")
}

// WaitURLPrefix waits until the URL of the tab (see URL) starts with prefix,
// and stops the test with the last URL when timeout passes first.
func (tb *Tab) WaitURLPrefix(t testing.TB, prefix string, timeout time.Duration) {
	t.Helper()
	var last string
	if !pollUntil(timeout, func() bool {
		u, err := tb.tryURL(min(timeout, tb.timeout))
		if err == nil {
			last = u
		}
		return err == nil && strings.HasPrefix(u, prefix)
	}) {
		t.Fatalf("testenv: browser: URL did not start with %q within %v; last URL %q", prefix, timeout, last)
	}
}

// WaitText waits until the text of the page (see Text) holds substr, and stops
// the test with the last text when timeout passes first.
func (tb *Tab) WaitText(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	var last string
	if !pollUntil(timeout, func() bool {
		s, err := tb.tryText()
		if err == nil {
			last = s
		}
		return err == nil && strings.Contains(s, substr)
	}) {
		u, _ := tb.tryURL(2 * time.Second)
		t.Fatalf("testenv: browser: page text did not contain %q within %v (tab at %s); last text:\n%s", substr, timeout, u, last)
	}
}

// pollUntil calls ok until it returns true or timeout passes, and reports
// whether it returned true. It calls ok at least once.
func pollUntil(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(browserPollInterval)
	}
}

// Cookies returns the cookies that the tab's cookie jar would send to url,
// including HttpOnly ones. An empty url means the URL of the current page.
func (tb *Tab) Cookies(t testing.TB, url string) []*network.Cookie {
	t.Helper()
	var p network.GetCookiesParams
	if url != "" {
		p.URLs = []string{url}
	}
	res, err := callTab(tb, network.GetCookies, p)
	if err != nil {
		tb.fatal(t, "reading cookies", err)
	}
	return res.Cookies
}

// Cookie returns the cookie named name that the tab would send to url, or nil.
func (tb *Tab) Cookie(t testing.TB, url, name string) *network.Cookie {
	t.Helper()
	for _, c := range tb.Cookies(t, url) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// SetCookie stores a cookie for url in the tab's cookie jar, as if url had set
// it with default attributes (host-only, path from url, session). Use it to
// plant or replay a cookie. For other attributes call SetCookieParams.
func (tb *Tab) SetCookie(t testing.TB, url, name, value string) {
	t.Helper()
	tb.SetCookieParams(t, network.SetCookieParams{URL: url, Name: name, Value: value})
}

// SetCookieParams stores the cookie that p describes in the tab's cookie jar.
func (tb *Tab) SetCookieParams(t testing.TB, p network.SetCookieParams) {
	t.Helper()
	if _, err := callTab(tb, network.SetCookie, p); err != nil {
		tb.fatal(t, "setting cookie "+p.Name, err)
	}
}

// DeleteCookies deletes every cookie of the tab's browser context. Tabs in
// other browser contexts (NewIncognito) keep theirs.
func (tb *Tab) DeleteCookies(t testing.TB) {
	t.Helper()
	if _, err := callTab(tb, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		tb.fatal(t, "deleting cookies", err)
	}
}

// Eval evaluates the JavaScript expression js in the page, awaits it when it
// is a promise, and decodes its JSON value into out. A nil out ignores the
// value. A thrown exception stops the test.
func (tb *Tab) Eval(t testing.TB, js string, out any) {
	t.Helper()
	if out == nil {
		if _, err := runTab(tb, chromedp.Evaluate[chromedp.Void](js, chromedp.EvalAwaitPromise)); err != nil {
			tb.fatal(t, "evaluating "+js, err)
		}
		return
	}
	raw, err := runTab(tb, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fatal(t, "evaluating "+js, err)
	}
	if len(raw) == 0 {
		raw = []byte("null") // undefined
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("testenv: browser: decoding the value of %s: %v (value %s)", js, err, raw)
	}
}

// Screenshot writes a PNG image of the tab's viewport to path, for debugging.
func (tb *Tab) Screenshot(t testing.TB, path string) {
	t.Helper()
	buf, err := runTab(tb, chromedp.CaptureScreenshot())
	if err != nil {
		tb.fatal(t, "taking a screenshot", err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("testenv: browser: writing the screenshot: %v", err)
	}
}

// FullScreenshot writes a PNG image of the whole page, beyond the
// viewport, to path: for people to review what a page looks like.
func (tb *Tab) FullScreenshot(t testing.TB, path string) {
	t.Helper()
	buf, err := runTab(tb, chromedp.FullScreenshot(100))
	if err != nil {
		tb.fatal(t, "taking a full-page screenshot", err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("testenv: browser: writing the screenshot: %v", err)
	}
}
