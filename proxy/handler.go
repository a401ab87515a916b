package proxy

import (
	"net/http"
	"strings"

	"ztproxy/decide"
	"ztproxy/forwardauth"
	"ztproxy/listener"
	"ztproxy/portal"
)

// serveHTTP is the public listener's entry point: the engine routes,
// authenticates, assesses and decides; an allowed request is forwarded;
// every outcome is audited.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	s.metrics.InFlight.Inc()
	defer s.metrics.InFlight.Dec()
	snap := s.state.Load()
	x := &exchange{}
	err := snap.engine.Begin(&x.Exchange, r, start)
	if err == nil && listener.ConflictingFraming(r) {
		// Issue 12.5: refused, and the connection closes (boundary).
		err = errConflictingFraming
	}
	if err == nil && strings.HasPrefix(r.URL.Path, "/.ztp/") {
		s.serveZTP(w, r, &x.Exchange)
		return
	}
	// The server span (tracing on) ends with the audit line.
	r = snap.engine.StartTrace(r, &x.Exchange)
	// Exactly one audit line and metric sample, also when forwarding
	// panics (issue 22.3).
	audit := decide.NewAuditOnce(&x.Exchange, start)
	defer audit.OnPanic()
	if err == nil {
		v := snap.engine.Decide(r, &x.Exchange)
		for _, c := range v.SetCookies {
			http.SetCookie(w, c)
		}
		err = v.Err
	}
	if err == nil {
		x.Status, err = snap.forward[x.Route.Index].serve(w, r, x)
	} else {
		x.Status = portal.WriteError(w, r, err, x.RC.RequestID)
	}
	if err != nil {
		_, x.ErrCode = decide.StatusOf(err)
	}
	audit.Finish(err)
}

// serveZTP answers the proxy's own /.ztp/ namespace on the public
// listener: forward-auth's /.ztp/verify and the portal's pages and
// endpoints. Nothing under /.ztp/ is ever forwarded.
func (s *Server) serveZTP(w http.ResponseWriter, r *http.Request, x *decide.Exchange) {
	x.RC.Route = "ztp"
	x.RC.Path = r.URL.Path
	x.RC.Host = decide.CanonicalHost(r.Host, r.TLS != nil)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	if r.URL.Path == forwardauth.VerifyPath {
		s.forwardAuth.ServeVerify(w, r, x)
		return
	}
	s.portal.Serve(w, r, x)
}
