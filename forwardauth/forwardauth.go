package forwardauth

import (
	"log/slog"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"ztproxy/decide"
	"ztproxy/idheaders"
	"ztproxy/metrics"
)

// VerifyPath is the forward-auth decision endpoint on the public
// listener.
const VerifyPath = "/.ztp/verify"

// Options configure forward-auth.
type Options struct {
	// Engine returns the engine of the serving configuration; ext_authz
	// asks it once per check.
	Engine func() *decide.Engine
	// Signer signs the identity assertions of allowed requests.
	Signer  *idheaders.Signer
	Logger  *slog.Logger
	Now     func() time.Time
	Metrics *metrics.Metrics
}

// Server answers front proxies that ask whether a request may pass:
// /.ztp/verify over HTTP (ServeVerify) and Envoy's external authorization
// API over gRPC (Check). It implements
// envoy.service.auth.v3.Authorization on top of the same pipeline
// /.ztp/verify uses: Envoy describes the request in a CheckRequest
// instead of X-Original-* headers, and the answer becomes a CheckResponse
// instead of a 200/401/403.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine  func() *decide.Engine
	signer  *idheaders.Signer
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// New returns the forward-auth server.
func New(opts Options) *Server {
	return &Server{engine: opts.Engine, signer: opts.Signer, log: opts.Logger, now: opts.Now, metrics: opts.Metrics}
}

// GRPCServer returns a gRPC server with the Envoy external authorization
// service registered. Serve it on a listener only the local Envoy can
// reach (loopback or a unix socket): the CheckRequest's source principal
// is taken as the caller's verified device identity.
func (s *Server) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	g := grpc.NewServer(opts...)
	s.Register(g)
	return g
}

// Register registers the Envoy external authorization service on an
// existing gRPC server, for embedders that serve other services too.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	authv3.RegisterAuthorizationServer(g, s)
}
