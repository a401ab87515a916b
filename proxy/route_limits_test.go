package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ztproxy/decide"
	"ztproxy/upstream"
)

// unansweredAddr returns a loopback address whose TCP handshakes never
// complete: a listener with a backlog of 0 that never accepts, its
// accept queue filled by one connection, so that the kernel drops every
// further SYN and a dial hangs until its own timeout. (A real unreachable
// address would depend on the network the test runs in.)
func unansweredAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the accept queue (backlog 0 holds one connection); then make
	// sure a dial really hangs.
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("%s still completes handshakes; cannot test a connect timeout here", addr)
	}
	return addr
}

// Issue 18 (limits): connect_timeout bounds the TCP connect on its own:
// an upstream that never completes the handshake fails the request with
// 504 upstream_timeout after connect_timeout, not after the route's
// timeout or the 10 s default.
func TestRouteConnectTimeout(t *testing.T) {
	addr := unansweredAddr(t)
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.Upstream, rc.Timeout, rc.ConnectTimeout = mustURL(t, "http://"+addr), time.Minute, 300*time.Millisecond
	})
	start := time.Now()
	rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng"))
	took := time.Since(start)
	if rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), "upstream_timeout") || took > 3*time.Second {
		t.Fatalf("%d %s after %v, want 504 upstream_timeout after about 300ms", rec.Code, rec.Body, took)
	}
	if took < 250*time.Millisecond {
		t.Fatalf("answered after %v, before the connect timeout: the dial did not hang", took)
	}
}

// connTracker counts the upstream's connections by state.
type connTracker struct {
	mu     sync.Mutex
	opened int
	closed int
}

func (c *connTracker) hook(_ net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.opened++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

func (c *connTracker) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.closed
}

// Issue 18 (limits): idle_timeout closes the route's pooled upstream
// connections once they have been idle that long; until then they are
// reused.
func TestRouteIdleTimeout(t *testing.T) {
	for _, mode := range []upstream.Mode{upstream.Lean, upstream.Standard} {
		t.Run(string(mode), func(t *testing.T) {
			ct := &connTracker{}
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
			up.Config.ConnState = ct.hook
			up.Config.IdleTimeout = time.Hour // only the proxy may close
			up.Start()
			t.Cleanup(up.Close)
			tp := newTestProxy(t)
			withRoute(t, tp, func(rc *decide.RouteConfig) {
				rc.Upstream, rc.IdleTimeout, rc.UpstreamTransport = mustURL(t, up.URL), 300*time.Millisecond, mode
			})
			for i := 0; i < 2; i++ {
				if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng")); rec.Code != http.StatusOK {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			if opened, closed := ct.counts(); opened != 1 || closed != 0 {
				t.Fatalf("back to back: %d connections opened, %d closed; want one, reused", opened, closed)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, closed := ct.counts(); closed == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the idle upstream connection was not closed within 5s of a 300ms idle_timeout")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng")); rec.Code != http.StatusOK {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if opened, _ := ct.counts(); opened != 2 {
				t.Fatalf("%d connections opened, want a new one after the idle one closed", opened)
			}
		})
	}
}

// healthySeries is the ztproxy_upstream_healthy series: "route upstream"
// → value.
func healthySeries(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	families, err := s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "ztproxy_upstream_healthy" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["route"]+" "+labels["upstream"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

// Issue 18 (several upstreams): a reload that removes a pooled route, or
// an upstream of its pool, drops their ztproxy_upstream_healthy series;
// a rejected configuration leaves none of its own behind. Before, a
// removed upstream stayed "healthy" (or "unhealthy") in /metrics forever.
func TestReloadDropsRemovedUpstreamSeries(t *testing.T) {
	ups := make([]string, 3)
	for i := range ups {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		t.Cleanup(srv.Close)
		ups[i] = strings.TrimPrefix(srv.URL, "http://")
	}
	tp := newTestProxy(t)
	pool := func(hosts ...string) func(rc *decide.RouteConfig) {
		return func(rc *decide.RouteConfig) {
			rc.Upstreams = nil
			for _, h := range hosts {
				rc.Upstreams = append(rc.Upstreams, mustURL(t, "http://"+h))
			}
			rc.Upstream, rc.LBPolicy = rc.Upstreams[0], upstream.RoundRobin
		}
	}
	check := func(step string, want ...string) {
		t.Helper()
		got := healthySeries(t, tp.server)
		if len(got) != len(want) {
			t.Fatalf("%s: series %v, want %v", step, got, want)
		}
		for _, w := range want {
			if got["api "+w] != 1 {
				t.Fatalf("%s: series %v, want api %s healthy", step, got, w)
			}
		}
	}
	withRoute(t, tp, pool(ups[0], ups[1]))
	check("pool of two", ups[0], ups[1])
	withRoute(t, tp, pool(ups[0], ups[2]))
	check("upstream replaced", ups[0], ups[2])

	bad := tp.cfg
	bad.Routes = append([]decide.RouteConfig{}, tp.cfg.Routes...)
	for i := range bad.Routes {
		switch bad.Routes[i].Name {
		case "admin":
			pool(ups[1], ups[2])(&bad.Routes[i])
		case "devices":
			bad.Routes[i].UpstreamTransport = "bogus"
		}
	}
	if err := tp.server.Update(bad); err == nil {
		t.Fatal("a configuration with a bogus upstream transport was accepted")
	}
	check("rejected configuration", ups[0], ups[2])

	withRoute(t, tp, func(rc *decide.RouteConfig) {})
	check("route back to one upstream")
}

// Issue 18 (several upstreams): a replaced pool's late events (here the
// timer that puts an ejected upstream back) no longer set a series: after
// the reload that removed the pool, its series stay gone.
func TestReloadIgnoresReplacedPoolEvents(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(live.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := mustURL(t, dead.URL)
	dead.Close() // connections to it are refused
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.Upstreams = []*url.URL{deadURL, mustURL(t, live.URL)}
		rc.Upstream, rc.LBPolicy = deadURL, upstream.RoundRobin
		rc.Outlier = &upstream.Outlier{ConsecutiveFailures: 1, EjectionTime: 300 * time.Millisecond}
	})
	for i := 0; i < 2; i++ { // round robin: one of the two reaches the dead upstream
		if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng")); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	if got := healthySeries(t, tp.server); got["api "+deadURL.Host] != 0 || len(got) != 2 {
		t.Fatalf("series %v, want the dead upstream ejected", got)
	}
	withRoute(t, tp, func(rc *decide.RouteConfig) {})
	time.Sleep(600 * time.Millisecond) // past the ejection time
	if got := healthySeries(t, tp.server); len(got) != 0 {
		t.Fatalf("series %v after the pool was removed, want none", got)
	}
}
