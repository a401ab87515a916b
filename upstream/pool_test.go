package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namedServer answers its name; /healthz answers health (settable).
type namedServer struct {
	*httptest.Server
	name    string
	healthy atomic.Bool
	status  atomic.Int32
	hits    atomic.Int64
}

func newNamedServer(t *testing.T, name string) *namedServer {
	s := &namedServer{name: name}
	s.healthy.Store(true)
	s.status.Store(200)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !s.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		s.hits.Add(1)
		w.WriteHeader(int(s.status.Load()))
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func poolOf(t *testing.T, cfg PoolConfig, servers ...*namedServer) *Pool {
	t.Helper()
	for _, s := range servers {
		u, _ := url.Parse(s.URL)
		cfg.Endpoints = append(cfg.Endpoints, u)
	}
	cfg.Base.URL = cfg.Endpoints[0]
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func poolGet(t *testing.T, rt http.RoundTripper, ctx context.Context) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://pool.invalid/x", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

// Issue 18 (several upstreams): each policy spreads or sticks as it says.
func TestPoolPolicies(t *testing.T) {
	a, b, c := newNamedServer(t, "a"), newNamedServer(t, "b"), newNamedServer(t, "c")
	for _, policy := range []LBPolicy{RoundRobin, LeastRequest, Random} {
		p := poolOf(t, PoolConfig{Policy: policy}, a, b, c)
		seen := map[string]int{}
		for range 60 {
			name, err := poolGet(t, p, context.Background())
			if err != nil {
				t.Fatal(err)
			}
			seen[name]++
		}
		if len(seen) != 3 {
			t.Errorf("%s: reached %v, want all three", policy, seen)
		}
	}
	p := poolOf(t, PoolConfig{Policy: HashUser}, a, b, c)
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		ctx := WithHashKey(context.Background(), "https://idp#"+user)
		first, _ := poolGet(t, p, ctx)
		for range 10 {
			if got, _ := poolGet(t, p, ctx); got != first {
				t.Fatalf("hash_user: %s moved from %s to %s", user, first, got)
			}
		}
	}
}

// Issue 18 (several upstreams): least_request prefers the idle upstream.
func TestPoolLeastRequest(t *testing.T) {
	release := make(chan struct{})
	var slowHits atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		<-release
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	defer close(release)
	fast := newNamedServer(t, "fast")
	su, _ := url.Parse(slow.URL)
	fu, _ := url.Parse(fast.URL)
	p, err := NewPool(PoolConfig{Endpoints: []*url.URL{su, fu}, Base: Config{URL: su}, Policy: LeastRequest})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Park a few requests on the slow upstream.
	for range 3 {
		go poolGet(t, p, context.Background())
	}
	if !waitFor(func() bool { return slowHits.Load() > 0 }) {
		t.Fatal("no request reached the slow upstream")
	}
	for range 20 {
		// Bounded: a request wrongly sent to the slow upstream fails the
		// test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := poolGet(t, p, ctx)
		cancel()
		if err != nil || got != "fast" {
			t.Fatalf("with requests parked on the slow upstream: %q %v", got, err)
		}
	}
}

// Issue 18 (several upstreams): a dead upstream costs idempotent
// requests nothing (the connection failure is retried elsewhere), is
// found by the active check and comes back when it recovers; a POST is
// never sent twice.
func TestPoolHealthAndRetry(t *testing.T) {
	a, b := newNamedServer(t, "a"), newNamedServer(t, "b")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens: connections are refused
	du, _ := url.Parse("http://" + deadAddr)
	au, _ := url.Parse(a.URL)
	bu, _ := url.Parse(b.URL)
	var mu sync.Mutex
	events := &recordEvents{mu: &mu}
	p, err := NewPool(PoolConfig{Endpoints: []*url.URL{au, du, bu}, Base: Config{URL: au}, Policy: RoundRobin,
		Health:  &HealthCheck{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1},
		Outlier: &Outlier{ConsecutiveFailures: 1, EjectionTime: time.Minute}, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 30 {
		if _, err := poolGet(t, p, context.Background()); err != nil {
			t.Fatalf("GET %d with one upstream down: %v", i, err)
		}
	}
	post, _ := http.NewRequest("POST", "http://pool.invalid/x", strings.NewReader("once"))
	for range 6 {
		post.Body = io.NopCloser(strings.NewReader("once"))
		if resp, err := p.RoundTrip(post); err == nil {
			resp.Body.Close()
		}
	}
	if !waitFor(func() bool { return stateOf(p, deadAddr) == "unhealthy" }) {
		t.Fatalf("the dead upstream is %q, want unhealthy", stateOf(p, deadAddr))
	}
	// b fails its health check: requests go to a only.
	b.healthy.Store(false)
	if !waitFor(func() bool { return stateOf(p, bu.Host) == "unhealthy" }) {
		t.Fatal("b not marked unhealthy")
	}
	before := b.hits.Load()
	for range 10 {
		if got, err := poolGet(t, p, context.Background()); err != nil || got != "a" {
			t.Fatalf("with b unhealthy: %q %v", got, err)
		}
	}
	if b.hits.Load() != before {
		t.Error("an unhealthy upstream got requests")
	}
	b.healthy.Store(true)
	if !waitFor(func() bool { return stateOf(p, bu.Host) == "healthy" }) {
		t.Fatal("b did not recover")
	}
	events.mu.Lock()
	defer events.mu.Unlock()
	if !strings.Contains(events.log, deadAddr+" unhealthy") || !strings.Contains(events.log, bu.Host+" healthy") {
		t.Errorf("events: %s", events.log)
	}
}

// Issue 18 (several upstreams): consecutive 5xx eject an upstream.
func TestPoolOutlierEjection(t *testing.T) {
	a, b := newNamedServer(t, "a"), newNamedServer(t, "b")
	b.status.Store(503)
	p := poolOf(t, PoolConfig{Policy: RoundRobin, Outlier: &Outlier{ConsecutiveFailures: 2, EjectionTime: time.Minute}}, a, b)
	for range 6 {
		poolGet(t, p, context.Background())
	}
	bu, _ := url.Parse(b.URL)
	if stateOf(p, bu.Host) != "ejected" {
		t.Fatalf("b after 503s: %q", stateOf(p, bu.Host))
	}
	before := b.hits.Load()
	for range 10 {
		poolGet(t, p, context.Background())
	}
	if b.hits.Load() != before {
		t.Error("an ejected upstream got requests")
	}
}

type recordEvents struct {
	mu  *sync.Mutex
	log string
}

func (e *recordEvents) Health(endpoint, state string) {
	e.mu.Lock()
	e.log += endpoint + " " + state + "\n"
	e.mu.Unlock()
}
func (e *recordEvents) Retried(endpoint string) {}

func stateOf(p *Pool, endpoint string) string {
	for _, s := range p.States() {
		if s.Endpoint == endpoint {
			return s.State
		}
	}
	return ""
}

func waitFor(ok func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Issue 18 (several upstreams): only idempotent, body-less requests that
// never reached an upstream are sent again; a POST to a dead upstream
// fails instead of going to a second one.
func TestPoolRetriesOnlyIdempotent(t *testing.T) {
	a := newNamedServer(t, "a")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	du, _ := url.Parse("http://" + dead.Addr().String())
	dead.Close()
	au, _ := url.Parse(a.URL)
	p, err := NewPool(PoolConfig{Endpoints: []*url.URL{du, au}, Base: Config{URL: au}, Policy: RoundRobin})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var postErrs, getErrs int
	for range 10 {
		req, _ := http.NewRequest("POST", "http://pool.invalid/x", strings.NewReader("once"))
		if resp, err := p.RoundTrip(req); err != nil {
			postErrs++
		} else {
			resp.Body.Close()
		}
	}
	for range 10 {
		if _, err := poolGet(t, p, context.Background()); err != nil {
			getErrs++
		}
	}
	if postErrs == 0 || getErrs != 0 {
		t.Fatalf("POST failures %d (want some: never retried), GET failures %d (want none: retried)", postErrs, getErrs)
	}
	if a.hits.Load() != int64(10+10-postErrs) {
		t.Fatalf("a got %d requests, want %d", a.hits.Load(), 20-postErrs)
	}
}
