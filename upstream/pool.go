package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// LBPolicy picks one of a route's upstreams for each request.
type LBPolicy string

// Load-balancing policies.
const (
	RoundRobin   LBPolicy = "round_robin"
	LeastRequest LBPolicy = "least_request"
	Random       LBPolicy = "random"
	// HashUser keeps each principal on one upstream (rendezvous hashing
	// of the key set with WithHashKey): only the principals of an
	// upstream that goes away move.
	HashUser LBPolicy = "hash_user"
)

// ErrNoHealthyUpstream is returned when every upstream of a pool is
// unhealthy by its active health check.
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// PoolConfig is a route with several upstreams.
type PoolConfig struct {
	// Endpoints share everything but scheme and host: each gets its own
	// Transport built from Base with URL replaced.
	Endpoints []*url.URL
	Base      Config
	Policy    LBPolicy
	// Health, when set, checks every endpoint actively.
	Health *HealthCheck
	// Outlier, when set, ejects an endpoint after consecutive failures.
	Outlier *Outlier
	// Events, when set, is told about health changes (metrics, logs).
	Events PoolEvents
}

// PoolEvents observe a pool; every method must be cheap and safe to call
// concurrently.
type PoolEvents interface {
	// Health reports an endpoint's state: "healthy", "unhealthy" (active
	// check) or "ejected" (passive).
	Health(endpoint, state string)
	// Retried reports a request sent again to another endpoint after a
	// connection to the first failed.
	Retried(endpoint string)
}

// Pool is a Transport over several endpoints.
type Pool struct {
	policy    LBPolicy
	endpoints []*endpoint
	outlier   *Outlier
	events    PoolEvents
	next      atomic.Uint64 // round robin
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

var _ Transport = (*Pool)(nil)

// endpoint is one upstream and its health.
type endpoint struct {
	url       *url.URL
	name      string // host:port, the metric label
	transport Transport
	inflight  atomic.Int64
	// healthy is the active health check's verdict (true until a check
	// says otherwise).
	healthy atomic.Bool
	// ejectedUntil is the passive ejection's end, unix nanoseconds.
	ejectedUntil atomic.Int64
	failures     atomic.Int32 // consecutive 5xx / connect failures
	checkPass    int          // consecutive active results, owned by the checker
	checkFail    int
}

// NewPool builds the endpoints' transports and starts the health checks;
// Close stops them.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("a pool needs at least one upstream")
	}
	switch cfg.Policy {
	case "":
		cfg.Policy = RoundRobin
	case RoundRobin, LeastRequest, Random, HashUser:
	default:
		return nil, fmt.Errorf("lb_policy must be round_robin, least_request, random or hash_user, not %q", cfg.Policy)
	}
	p := &Pool{policy: cfg.Policy, outlier: cfg.Outlier, events: cfg.Events}
	for _, u := range cfg.Endpoints {
		c := cfg.Base
		c.URL = u
		t, err := New(c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.Redacted(), err)
		}
		ep := &endpoint{url: u, name: u.Host, transport: t}
		ep.healthy.Store(true)
		p.endpoints = append(p.endpoints, ep)
	}
	if cfg.Health != nil {
		ctx, cancel := context.WithCancel(context.Background())
		p.stop = cancel
		p.startHealthChecks(ctx, cfg.Health, cfg.Base)
	}
	return p, nil
}

// Close stops the health checks and closes idle connections.
func (p *Pool) Close() {
	if p.stop != nil {
		p.stop()
		p.wg.Wait()
	}
	p.CloseIdleConnections()
}

// CloseIdleConnections closes every endpoint's idle connections.
func (p *Pool) CloseIdleConnections() {
	for _, ep := range p.endpoints {
		ep.transport.CloseIdleConnections()
	}
}

// RoundTrip sends req to an endpoint the policy picks. A request that
// never reached an endpoint (the connection could not be made) and is
// idempotent and body-less goes to another endpoint; nothing else is
// ever sent twice.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	var tried []*endpoint
	for {
		ep := p.pick(req, tried)
		if ep == nil {
			return nil, ErrNoHealthyUpstream
		}
		resp, err := p.send(ep, req)
		if err == nil || !retryable(req, err) || len(tried)+1 >= len(p.endpoints) || req.Context().Err() != nil {
			return resp, err
		}
		tried = append(tried, ep)
		if p.events != nil {
			p.events.Retried(ep.name)
		}
	}
}

// send forwards req to ep and records the outcome for outlier ejection.
// Only the URL's scheme and host change; the request is copied, not
// modified (RoundTripper contract).
func (p *Pool) send(ep *endpoint, req *http.Request) (*http.Response, error) {
	out := *req
	u := *req.URL
	u.Scheme, u.Host = RequestScheme(ep.url), ep.url.Host
	out.URL = &u
	ep.inflight.Add(1)
	resp, err := ep.transport.RoundTrip(&out)
	ep.inflight.Add(-1)
	switch {
	case err != nil && req.Context().Err() == nil:
		p.failed(ep)
	case err == nil && resp.StatusCode >= 500:
		p.failed(ep)
	case err == nil:
		ep.failures.Store(0)
	}
	return resp, err
}

// retryable: an idempotent request without a body whose connection could
// not be made (so no byte of it reached an upstream).
func retryable(req *http.Request, err error) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete, http.MethodPut:
	default:
		return false
	}
	return isDialError(err)
}

// isDialError reports whether err is a failure to connect.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// pick chooses among the endpoints neither tried, unhealthy nor ejected;
// when every healthy one is ejected, ejection is ignored (better a
// suspect upstream than none), but an actively unhealthy one is never
// picked.
func (p *Pool) pick(req *http.Request, tried []*endpoint) *endpoint {
	now := time.Now().UnixNano()
	var buf [8]*endpoint
	cands := buf[:0]
	for _, ep := range p.endpoints {
		if ep.healthy.Load() && ep.ejectedUntil.Load() <= now && !contains(tried, ep) {
			cands = append(cands, ep)
		}
	}
	if len(cands) == 0 {
		for _, ep := range p.endpoints {
			if ep.healthy.Load() && !contains(tried, ep) {
				cands = append(cands, ep)
			}
		}
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	switch p.policy {
	case LeastRequest:
		return leastRequest(cands, p.next.Add(1))
	case Random:
		return cands[rand.IntN(len(cands))]
	case HashUser:
		if key, ok := req.Context().Value(hashKey{}).(string); ok && key != "" {
			return rendezvous(cands, key)
		}
	}
	return cands[p.next.Add(1)%uint64(len(cands))]
}

// leastRequest picks the endpoint with the fewest requests in flight,
// starting the scan at a rotating offset so ties spread.
func leastRequest(cands []*endpoint, offset uint64) *endpoint {
	n := len(cands)
	start := int(offset % uint64(n))
	best := cands[start]
	for i := 1; i < n; i++ {
		ep := cands[(start+i)%n]
		if ep.inflight.Load() < best.inflight.Load() {
			best = ep
		}
	}
	return best
}

// rendezvous is highest-random-weight hashing: the endpoint with the
// highest hash of (key, endpoint) wins.
func rendezvous(cands []*endpoint, key string) *endpoint {
	var best *endpoint
	var bestScore uint64
	for _, ep := range cands {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(ep.name))
		if s := h.Sum64(); best == nil || s > bestScore {
			best, bestScore = ep, s
		}
	}
	return best
}

func contains(list []*endpoint, ep *endpoint) bool {
	for _, e := range list {
		if e == ep {
			return true
		}
	}
	return false
}

type hashKey struct{}

// WithHashKey sets the key hash_user pools place a request by (the
// canonical principal id).
func WithHashKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, hashKey{}, key)
}
