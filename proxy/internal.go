package proxy

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveInternal answers the proxy's own /.ztp/* endpoints on the public
// listener. Unknown /.ztp/ paths are 404 and never forwarded.
func (s *Server) serveInternal(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.rc.Route = "ztp"
	x.rc.Path = r.URL.Path
	x.rc.Host = canonicalHost(r.Host, r.TLS != nil)
	var err error
	switch r.URL.Path {
	case "/.ztp/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed"}
			break
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.signer.JWKS())
		return
	default:
		err = &httpError{status: http.StatusNotFound, code: "not_found", msg: "not found"}
	}
	writeError(w, r, err, x.rc.RequestID)
}

func promHandler(m *Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
