package forwardauth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"ztproxy/decide"
	"ztproxy/identity"
)

var (
	errExtAuthzPeer = status.Error(codes.PermissionDenied,
		"ext_authz answers only loopback, unix-socket or trusted_proxies peers")
	errExtAuthzInternal = status.Error(codes.Internal, "internal error")
)

// Check decides one request Envoy asks about. Every decision, including a
// malformed request, is a CheckResponse (Envoy relays its status and
// body); a gRPC error is returned only when the caller is not allowed to
// ask or has gone away, and Envoy then fails closed
// (failure_mode_allow: false).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (_ *authv3.CheckResponse, checkErr error) {
	eng := s.engine()
	start := s.now()
	s.metrics.InFlight.Inc()
	defer s.metrics.InFlight.Dec()
	attrs := req.GetAttributes()
	x := &decide.Exchange{Engine: eng}
	x.RC.RequestID = envoyRequestID(attrs.GetRequest().GetHttp().GetId())
	x.RC.Time = start
	x.RC.Principal = identity.Anonymous
	x.RC.Risk = identity.NeutralRisk
	x.RC.ClientIP = decide.ParseAddr(envoySourceAddr(attrs.GetSource())) // for the audit line of a malformed request
	audit := decide.NewAuditOnce(x, start)
	defer s.recoverExtAuthz(&audit, x, &checkErr)
	if !extAuthzPeerAllowed(ctx, eng.Config().TrustedProxies) {
		// Like /.ztp/verify's untrusted_peer: a stranger must not learn
		// which tokens pass which routes, nor assert a device principal.
		// Audited like it too, with the peer's own address.
		x.RC.ClientIP = netip.Addr{}
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			s.log.Warn("ext_authz check refused: untrusted peer", "peer", p.Addr.String())
			x.RC.ClientIP = decide.ParseAddr(p.Addr.String())
		}
		x.Status = http.StatusForbidden
		audit.Finish(errVerifyUntrusted)
		return nil, errExtAuthzPeer
	}

	rec := newHeaderRecorder()
	orig, r, err := extAuthzRequest(ctx, attrs)
	if err == nil {
		x.RC.Method = orig.method
		x.RC.UserAgent = r.UserAgent()
		x.RC.ClientIP, x.RC.TrustedProxyHops = decide.ClientAddress(r, eng.Config().TrustedProxies)
		x.TrustedPeer = x.RC.TrustedProxyHops > 0
		x.RC.Device = eng.WithPosture(ctx, envoyDevice(attrs.GetSource()))
		x.Scheme = orig.scheme
		err = decideOn(rec, r, x)
	}
	var assertion string
	if err == nil {
		assertion, err = s.verifyAllow(rec.Header(), x)
	}
	var resp *authv3.CheckResponse
	if err == nil {
		x.Status = http.StatusOK
		resp = extAuthzAllow(rec.Header(), r, x, assertion)
	} else {
		resp, x.Status = extAuthzDeny(rec, r, x, err)
		_, x.ErrCode = decide.StatusOf(err)
	}
	audit.Finish(err)
	if resp == nil {
		return nil, status.Error(codes.Canceled, "request cancelled")
	}
	return resp, nil
}

// extAuthzPeerAllowed reports whether the gRPC peer may ask: a unix
// socket, loopback, or an address in trusted_proxies (an Envoy on another
// host, reached over a network the operator trusts).
func extAuthzPeerAllowed(ctx context.Context, trusted []netip.Prefix) bool {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	switch addr := p.Addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip := decide.ParseAddr(addr.String())
		return ip.IsLoopback() || decide.IsTrusted(ip, trusted)
	}
	return false
}

// extAuthzRequest rebuilds the request Envoy describes as an *http.Request
// for decide: method, host, path with query, scheme, headers and the
// client's address. No body is read (with_request_body stays off).
func extAuthzRequest(ctx context.Context, attrs *authv3.AttributeContext) (originalRequest, *http.Request, error) {
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return originalRequest{}, nil, badOriginal("the check request has no attributes.request.http")
	}
	scheme := strings.ToLower(h.GetScheme())
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return originalRequest{}, nil, badOriginal("the original scheme must be http or https")
	}
	uri := h.GetPath()
	if !strings.HasPrefix(uri, "/") {
		return originalRequest{}, nil, badOriginal("the original path must start with /")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return originalRequest{}, nil, badOriginal("the original path is not a request URI")
	}
	u.Scheme, u.Host = scheme, h.GetHost()
	orig, err := newOriginal(h.GetMethod(), scheme, h.GetHost(), u)
	if err != nil {
		return originalRequest{}, nil, err
	}
	base := &http.Request{
		Method: orig.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: envoyHeaders(h), Host: orig.host, RemoteAddr: envoySourceAddr(attrs.GetSource()),
	}
	return orig, originalHTTPRequest(base.WithContext(ctx), &orig), nil
}

// envoyHeaders converts Envoy's header attributes: the merged headers map,
// or header_map when Envoy runs with encode_raw_headers. Pseudo-headers
// (:authority, :path, …) are carried by the other attributes.
func envoyHeaders(h *authv3.AttributeContext_HttpRequest) http.Header {
	out := make(http.Header, len(h.GetHeaders()))
	for k, v := range h.GetHeaders() {
		if !strings.HasPrefix(k, ":") && k != "host" {
			out[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		k := hv.GetKey()
		if strings.HasPrefix(k, ":") || strings.EqualFold(k, "host") {
			continue
		}
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		out.Add(k, v)
	}
	return out
}

// envoySourceAddr is the downstream client address Envoy reports, as
// host:port for decide.ClientAddress.
func envoySourceAddr(src *authv3.AttributeContext_Peer) string {
	sa := src.GetAddress().GetSocketAddress()
	if sa == nil {
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

// envoyDevice maps the downstream peer Envoy verified with mTLS to the
// device. Envoy sets the principal (the certificate's URI SAN, else DNS
// SAN, else subject) only after verifying the chain; an empty principal
// means no verified certificate and no device. The certificate itself is
// present only with include_peer_certificate and adds the fingerprint
// that posture lookups key on.
func envoyDevice(src *authv3.AttributeContext_Peer) identity.Device {
	principal := src.GetPrincipal()
	if principal == "" {
		return identity.Device{}
	}
	dev := identity.Device{Present: true, ID: principal}
	if u, err := url.Parse(principal); err == nil && isSPIFFEURL(u) {
		dev.SPIFFEID = principal
	}
	if leaf := envoyPeerCertificate(src.GetCertificate()); leaf != nil {
		fp := sha256.Sum256(leaf.Raw)
		dev.Fingerprint = hex.EncodeToString(fp[:])
		dev.NotAfter = leaf.NotAfter
		dev.DNSNames = leaf.DNSNames
		dev.Emails = leaf.EmailAddresses
		dev.CommonName = leaf.Subject.CommonName
	}
	return dev
}

// isSPIFFEURL applies the SPIFFE-ID rules certs uses for client
// certificates: a trust domain without port or user info, no query or
// fragment.
func isSPIFFEURL(u *url.URL) bool {
	return u.Scheme == "spiffe" && u.Host != "" && u.Port() == "" && u.User == nil &&
		u.Opaque == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// envoyPeerCertificate parses the URL-encoded PEM leaf Envoy sends with
// include_peer_certificate; nil if absent or unparseable.
func envoyPeerCertificate(encoded string) *x509.Certificate {
	if encoded == "" {
		return nil
	}
	raw, err := url.QueryUnescape(encoded)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode([]byte(raw))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return leaf
}

// envoyRequestID uses Envoy's x-request-id as the audit request id, so
// audit lines and Envoy's access log join on it, when it is a plain
// token; anything else gets a fresh id.
func envoyRequestID(id string) string {
	if id = decide.ValidRequestID(id); id == "" {
		return decide.NewRequestID()
	}
	return id
}

// recoverExtAuthz ends an ext_authz check whose handler panicked: gRPC,
// unlike net/http, would let the panic end the process, so the panic is
// logged with its stack, audited as an internal error and answered with
// codes.Internal (Envoy then fails closed).
func (s *Server) recoverExtAuthz(a *decide.AuditOnce, x *decide.Exchange, errp *error) {
	if a.Done() {
		return
	}
	p := recover()
	a.Finish(x.PanicOutcome(p))
	if p == nil {
		return // runtime.Goexit: let it go on
	}
	s.log.Error("ext_authz check panicked", "request_id", x.RC.RequestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*errp = errExtAuthzInternal
}
