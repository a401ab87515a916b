package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultBrowserTimeout is the time limit of one browser action (a navigation,
// a click, a query) when BrowserOptions.ActionTimeout is zero. Starting the
// browser and opening a tab have the same limit.
const DefaultBrowserTimeout = 20 * time.Second

// browserExtraFlags are added to ChromiumFlags. They keep Chromium from
// touching the desktop keyring and from slowing down tabs that are in the
// background, which multi-tab tests have.
var browserExtraFlags = []string{
	"--password-store=basic",
	"--use-mock-keychain",
	"--no-default-browser-check",
	"--disable-breakpad",
	"--disable-hang-monitor",
	"--disable-background-timer-throttling",
	"--disable-backgrounding-occluded-windows",
	"--disable-renderer-backgrounding",
	"--disable-popup-blocking",
	"--disable-features=Translate,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
	"--window-size=1280,800",
}

// BrowserOptions configures StartBrowser. The zero value starts a browser that
// checks TLS certificates and resolves host names with the system resolver.
type BrowserOptions struct {
	// IgnoreCertErrors makes Chromium accept any TLS certificate
	// (--ignore-certificate-errors). Chromium on Linux reads trust anchors from
	// NSS, not from a file, so this is the simple way to use a test CA.
	IgnoreCertErrors bool
	// HostResolverRules is the value of --host-resolver-rules, for example
	// "MAP *.ztp.test 127.0.0.1", so that tests can use several host names on
	// loopback. Ports are not changed by a MAP rule.
	HostResolverRules string
	// ActionTimeout limits each action. Zero means DefaultBrowserTimeout.
	ActionTimeout time.Duration
	// ExtraFlags are more command-line flags, in the form "--name" or
	// "--name=value". A flag here replaces a default flag of the same name.
	ExtraFlags []string
	// ClientCertificate, when set, is presented to matching sites without
	// a prompt (see ClientCertificate).
	ClientCertificate *ClientCertificate
}

// Browser is a headless Chromium process with a fresh profile. StartBrowser
// starts it, and it stops when the test that started it ends. Open tabs with
// NewTab and NewIncognito.
type Browser struct {
	ctx     context.Context // the chromedp context of the first tab; it owns the process
	timeout time.Duration
	output  *tailBuffer // the last output of the process, for failure messages
	log     *browserLog
	// StartupTime is how long the process took to start and to answer.
	StartupTime time.Duration
}

// browserLog sends chromedp's messages to the test log until the browser stops.
// A log call after the end of a test panics, and chromedp can log from its own
// goroutines at any time.
type browserLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *browserLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("testenv: chromedp: "+format, args...)
	}
}

func (l *browserLog) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

// StartBrowser launches headless Chromium with ChromiumFlags, a fresh profile
// in t.TempDir() and the options opts, and stops it when the test ends. A
// missing or broken Chromium fails the test under CI and skips it otherwise.
func StartBrowser(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	path := ChromiumPath(t)
	if path == "" {
		return nil // unreachable: ChromiumPath stopped the test
	}
	b := &Browser{
		timeout: opts.ActionTimeout,
		output:  newTailBuffer(8 << 10),
		log:     &browserLog{t: t},
	}
	if b.timeout <= 0 {
		b.timeout = DefaultBrowserTimeout
	}
	flags := slices.Concat(ChromiumFlags, browserExtraFlags, []string{"--user-data-dir=" + t.TempDir()})
	if opts.IgnoreCertErrors {
		flags = append(flags, "--ignore-certificate-errors")
	}
	if opts.HostResolverRules != "" {
		flags = append(flags, "--host-resolver-rules="+opts.HostResolverRules)
	}
	flags = append(flags, opts.ExtraFlags...)
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.CombinedOutput(b.output),
	}
	for _, f := range flags {
		allocOpts = append(allocOpts, flagOption(f))
	}
	if opts.ClientCertificate != nil {
		allocOpts = append(allocOpts, chromedp.Env("HOME="+setUpClientCertificate(t, opts.ClientCertificate)))
	}

	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(b.log.logf), chromedp.WithLogf(b.log.logf))
	b.ctx = ctx
	stop := func() {
		// A graceful close lets Chromium finish writing the profile, so that
		// t.TempDir can remove it. The first tab's context owns the process.
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_ = chromedp.Cancel(cctx)
		ccancel()
		cancel()
		allocCancel()
		b.log.stop()
	}

	start := time.Now()
	// The first run starts the process, and the process lives as long as the
	// context of that run, so it must not carry the action timeout.
	if err := awaitTimeout(b.timeout, func() error { return chromedp.Do(ctx) }); err != nil {
		cancel()
		allocCancel()
		b.log.stop()
		RequireComponent(t, "chromium", fmt.Errorf("starting %s: %w\noutput:\n%s", path, err, b.output.String()))
		return nil
	}
	b.StartupTime = time.Since(start)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: last chromium output (without D-Bus noise):\n%s", withoutDBusLines(b.output.String()))
		}
		stop()
	})
	t.Logf("testenv: chromium started in %v", b.StartupTime.Round(time.Millisecond))
	return b
}

// withoutDBusLines drops Chromium's complaints about the missing D-Bus, which
// fill its output in containers.
func withoutDBusLines(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, ":ERROR:dbus/") }), "\n")
}

// flagOption turns "--name=value" or "--name" into a chromedp flag option.
func flagOption(flag string) chromedp.ExecAllocatorOption {
	name, value, ok := strings.Cut(strings.TrimLeft(flag, "-"), "=")
	if !ok {
		return chromedp.Flag(name, true)
	}
	return chromedp.Flag(name, value)
}

// awaitTimeout runs f and returns its error, or an error after d. The caller
// must cancel whatever f waits on when awaitTimeout times out.
func awaitTimeout(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("no answer within %v", d)
	}
}

// Tab is one page (target) of a Browser. Its methods stop the test with
// t.Fatal when an action fails or takes longer than the action timeout. A Tab
// is not safe for use by several goroutines at once; use one Tab for each.
type Tab struct {
	ctx       context.Context
	timeout   time.Duration
	browser   *Browser
	mainFrame cdp.FrameID
	close     func()

	mu     sync.Mutex
	status int // of the last main-frame document response; see Status
}

// NewTab opens a tab in the browser's default browser context, so all tabs from
// NewTab share one cookie jar. The tab closes when the test t ends.
func (b *Browser) NewTab(t testing.TB) *Tab {
	t.Helper()
	return b.newTab(t, b.ctx)
}

// NewIncognito opens a tab in a new browser context: it has its own cookie jar
// and storage, shared only with the tabs that Tab.NewTab opens from it. The
// browser context is discarded when the tab closes at the end of the test t.
func (b *Browser) NewIncognito(t testing.TB) *Tab {
	t.Helper()
	return b.newTab(t, b.ctx, chromedp.WithNewBrowserContext())
}

// NewTab opens another tab in the same browser context (cookie jar) as tb. The
// new tab closes when the test t ends, or earlier when tb closes.
func (tb *Tab) NewTab(t testing.TB) *Tab {
	t.Helper()
	return tb.browser.newTab(t, tb.ctx)
}

func (b *Browser) newTab(t testing.TB, parent context.Context, opts ...chromedp.ContextOption) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	tab := &Tab{ctx: ctx, timeout: b.timeout, browser: b}
	var once sync.Once
	tab.close = func() { once.Do(cancel) }
	err := awaitTimeout(b.timeout, func() error {
		// As with the browser, the first run binds the tab to ctx, so it
		// runs without the action timeout.
		if err := chromedp.Do(ctx); err != nil {
			return err
		}
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return err
		}
		tab.mainFrame = tree.FrameTree.Frame.ID
		return chromedp.Listen(ctx, tab.recordStatus)
	})
	if err != nil {
		tab.close()
		t.Fatalf("testenv: opening a browser tab: %v", err)
	}
	t.Cleanup(tab.close)
	return tab
}

// recordStatus keeps the status of the last main-frame document response. It
// runs in the tab's event loop, so it must return fast and send no command.
func (tb *Tab) recordStatus(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		// A new navigation, or the next hop of a redirect: no final
		// response yet. A navigation that fails leaves the status at 0.
		if ev.Type == network.ResourceTypeDocument && ev.FrameID == tb.mainFrame {
			tb.mu.Lock()
			tb.status = 0
			tb.mu.Unlock()
		}
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument && ev.FrameID == tb.mainFrame && ev.Response != nil {
			tb.mu.Lock()
			tb.status = int(ev.Response.Status)
			tb.mu.Unlock()
		}
	}
}

// Close closes the tab before the end of the test. It is safe to call more
// than once.
func (tb *Tab) Close() { tb.close() }

// Context returns the raw chromedp context of the tab, for calls that Tab has no
// method for, such as chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, ...).
// It has no time limit; add one with context.WithTimeout.
func (tb *Tab) Context() context.Context { return tb.ctx }

// Status returns the HTTP status code of the last response to a main-frame
// navigation, after redirects. It is 0 before the first navigation and after a
// navigation that got no response, such as a refused connection.
func (tb *Tab) Status(t testing.TB) int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.status
}

// clickNavGrace is how long Click waits for a navigation to start after the
// click. A click that starts none costs this much time.
const clickNavGrace = 150 * time.Millisecond

// actAndWait runs act and, when a main-frame navigation starts within
// clickNavGrace after it, waits until that navigation has finished loading.
// An error page (for example a refused connection) also counts as loaded.
func (tb *Tab) actAndWait(act func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(tb.ctx, tb.timeout)
	defer cancel()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	started, finished := make(chan struct{}), make(chan struct{})
	var startOnce, finishOnce sync.Once
	isStarted := false // only the event loop touches it
	err := chromedp.Listen(lctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventFrameStartedLoading:
			if ev.FrameID == tb.mainFrame {
				isStarted = true
				startOnce.Do(func() { close(started) })
			}
		case *page.EventFrameStoppedLoading:
			if ev.FrameID == tb.mainFrame && isStarted {
				finishOnce.Do(func() { close(finished) })
			}
		case *page.EventNavigatedWithinDocument:
			if ev.FrameID == tb.mainFrame {
				startOnce.Do(func() { close(started) })
				finishOnce.Do(func() { close(finished) })
			}
		}
	})
	if err != nil {
		return err
	}
	if err := act(ctx); err != nil {
		return err
	}
	// Let the page run the tasks that the click queued, such as a form
	// submission, before the grace period starts.
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`new Promise(r => setTimeout(r, 0))`, chromedp.EvalAwaitPromise))
	grace := time.NewTimer(clickNavGrace)
	defer grace.Stop()
	select {
	case <-started:
	case <-grace.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the navigation to finish: %w", ctx.Err())
	}
}

// fatal stops the test with a message that names the action and the tab's URL.
func (tb *Tab) fatal(t testing.TB, what string, err error) {
	t.Helper()
	u, uerr := tb.tryURL(2 * time.Second)
	if uerr != nil {
		u = "unknown (" + uerr.Error() + ")"
	}
	t.Fatalf("testenv: browser: %s: %v (tab at %s)", what, err, u)
}

// tryURL returns the URL of the tab's current history entry. Unlike
// location.href it is the URL that failed for an error page.
// While a navigation commits in a new renderer, for example an error page, the
// tab briefly answers "Not attached to an active page"; tryURL retries that.
func (tb *Tab) tryURL(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	var h page.GetNavigationHistoryResult
	var err error
	for {
		h, err = chromedp.Run(ctx, chromedp.NavigationEntries())
		if err == nil || !strings.Contains(err.Error(), "Not attached to an active page") || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	if h.CurrentIndex < 0 || int(h.CurrentIndex) >= len(h.Entries) {
		return "", fmt.Errorf("no history entry %d of %d", h.CurrentIndex, len(h.Entries))
	}
	return h.Entries[h.CurrentIndex].URL, nil
}
