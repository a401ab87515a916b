package decide

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"ztproxy/certs"
	"ztproxy/identity"
	"ztproxy/metrics"
	"ztproxy/tracing"
)

// Options are what every Engine of one server shares and what outlives
// reloads: where audit lines and logs go, the clock, the metrics.
type Options struct {
	Audit  *slog.Logger
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now     func() time.Time
	Metrics *metrics.Metrics
	// Tracer starts the spans of requests; nil is tracing off.
	Tracer *tracing.Tracer
}

// CheckAndSetDefaults fills the unset options: a discarding audit log,
// slog's default logger, time.Now and a private metrics registry.
func (o *Options) CheckAndSetDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
}

// Engine decides requests under one configuration. It is immutable: a
// reload builds a new Engine and the listener swaps it in atomically,
// together with its own per-Route state (STYLE 9), so a request never
// sees two configurations.
type Engine struct {
	cfg    Config
	router *router
	routes []*Route
	issuer string // assertion issuer: the external URL without a trailing slash
	opts   *Options
}

// New checks cfg and compiles it: routes, the router, allowed origins.
// opts is shared by the engines of one server (it outlives reloads).
func New(cfg Config, opts *Options) (*Engine, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	opts.CheckAndSetDefaults()
	e := &Engine{cfg: cfg, issuer: strings.TrimSuffix(cfg.ExternalURL.String(), "/"), opts: opts}
	var errs []error
	for i := range cfg.Routes {
		rc := cfg.Routes[i]
		origins, err := compileOrigins(rc.AllowedOrigins)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] (%s): %w", i, rc.Name, err))
			continue
		}
		route := &Route{RouteConfig: rc, Index: i, origins: origins}
		if rc.RateLimit != nil {
			route.limiters = newLimiters(rc.RateLimit)
		}
		e.routes = append(e.routes, route)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.router = newRouter(append([]*Route(nil), e.routes...))
	return e, nil
}

// Config is the checked configuration; callers must not change it.
func (e *Engine) Config() *Config { return &e.cfg }

// Routes are the compiled routes in configuration order.
func (e *Engine) Routes() []*Route { return e.routes }

// Issuer is the external URL without a trailing slash: the assertion
// issuer and the base of every /.ztp/ link.
func (e *Engine) Issuer() string { return e.issuer }

// Begin starts the Exchange of a request that reached an HTTP front door
// at start: its request id, method, user agent, scheme, client address
// (through trusted_proxies) and the device of a verified client
// certificate with its inventory facts. It returns an error, and the
// request must be refused, when the method is not in canonical form
// (issue 12.4) or is CONNECT.
func (e *Engine) Begin(x *Exchange, r *http.Request, start time.Time) error {
	x.Engine = e
	x.Scheme = "http"
	if r.TLS != nil {
		x.Scheme = "https"
	}
	x.RC.Time = start
	x.RC.Method = r.Method
	if len(x.RC.Method) > identity.MaxMethodLength {
		x.RC.Method = x.RC.Method[:identity.MaxMethodLength] // for the audit line
	}
	x.RC.UserAgent = r.UserAgent()
	x.RC.Principal = identity.Anonymous
	x.RC.Risk = identity.NeutralRisk
	x.RC.ClientIP, x.RC.TrustedProxyHops = ClientAddress(r, e.cfg.TrustedProxies)
	x.TrustedPeer = x.RC.TrustedProxyHops > 0
	x.RC.RequestID = ""
	if x.TrustedPeer {
		// Issue 19: a trusted load balancer's request id joins its logs
		// with ours; a client's own is never believed.
		x.RC.RequestID = ValidRequestID(r.Header.Get("X-Request-Id"))
	}
	if x.RC.RequestID == "" {
		x.RC.RequestID = NewRequestID()
	}
	x.RC.Device = e.WithPosture(r.Context(), certs.DeviceFromState(r.TLS))
	return checkMethod(r.Method)
}

// StartTrace starts the server span of a request Begin prepared, and
// returns the request carrying it (r itself when tracing is off). The
// trace context is believed from trusted proxies only. Finish ends it.
func (e *Engine) StartTrace(r *http.Request, x *Exchange) *http.Request {
	if e.opts.Tracer == nil {
		return r
	}
	r, x.span = e.opts.Tracer.StartRequest(r, x.TrustedPeer)
	x.TraceID = tracing.TraceID(x.span)
	x.span.SetAttributes(attribute.String("ztproxy.request_id", x.RC.RequestID))
	return r
}

// WithPosture adds the device inventory's facts (Config.Devices) to a
// present device.
func (e *Engine) WithPosture(ctx context.Context, d identity.Device) identity.Device {
	if d.Present && e.cfg.Devices != nil {
		return e.cfg.Devices.DeviceFacts(ctx, d)
	}
	return d
}
