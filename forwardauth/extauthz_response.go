package forwardauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"ztproxy/decide"
	"ztproxy/idheaders"
)

// headerRecorder is the http.ResponseWriter a Check writes the session
// cookies, verifyAllow's headers and writeVerifyError's answer to; its
// headers, status and body become the CheckResponse. Bodies are the verify endpoint's small JSON.
type headerRecorder struct {
	h      http.Header
	status int
	body   strings.Builder
}

func newHeaderRecorder() *headerRecorder { return &headerRecorder{h: make(http.Header)} }

func (r *headerRecorder) Header() http.Header { return r.h }

func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *headerRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// extAuthzAllow turns an allow into an OkHttpResponse: the identity
// headers verifyAllow produced are set on the upstream request
// (overwriting any client copy), refreshed session cookies go to the
// client, and every other client-sent spelling of a proxy-owned header is
// removed, as proxy mode strips them.
func extAuthzAllow(h http.Header, r *http.Request, x *decide.Exchange, assertion string) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	set := make(map[string]bool)
	setHeader := func(name, value string) {
		ok.Headers = append(ok.Headers, headerOption(name, value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
		set[name] = true
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range h {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		switch {
		case name == "Set-Cookie":
			for _, v := range h[name] {
				ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd,
					headerOption("set-cookie", v, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD))
			}
		case strings.HasPrefix(name, "X-Ztp-"):
			setHeader(strings.ToLower(name), h.Get(name))
		}
	}
	// Proxy mode names the device too; forward-auth cannot know it, but
	// Envoy verified it.
	if assertion != "" && x.RC.Device.Present {
		setHeader(strings.ToLower(idheaders.Device), idheaders.SafeValue(x.RC.Device.ID))
	}
	if cookie, changed := withoutSessionCookie(r.Header, x.Engine.Config().SessionCookieName); changed && cookie != "" {
		setHeader("cookie", cookie)
	}
	ok.HeadersToRemove = extAuthzHeadersToRemove(r.Header, x, set)
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// extAuthzHeadersToRemove lists the request headers Envoy must drop before
// forwarding: every spelling of a proxy-owned header (x-ztp-*, X_Ztp_…,
// the client-certificate and identity headers other proxies use), the
// Authorization header the proxy consumed, and the Cookie header if the
// session cookie was its only content.
//
// Envoy applies headers_to_remove after the headers it sets, so a name
// this answer sets (set) must not be listed: it would remove the proxy's
// own value. The client's copy of such a header is overwritten instead.
func extAuthzHeadersToRemove(h http.Header, x *decide.Exchange, set map[string]bool) []string {
	var remove []string
	for name := range h {
		lower := strings.ToLower(name)
		if set[lower] || !idheaders.NeedsNormalising(name) {
			continue
		}
		norm := idheaders.NormalizeName(name)
		// Envoy owns x-forwarded-client-cert (forward_client_cert_details)
		// and has already sanitised it; it is not the client's.
		if norm == "x-forwarded-client-cert" {
			continue
		}
		if idheaders.IsOwned(norm, true) || idheaders.IsDisguisedFraming(name, norm) {
			remove = append(remove, lower)
		}
	}
	if x.ConsumedAuth {
		remove = append(remove, "authorization")
	}
	if cookie, changed := withoutSessionCookie(h, x.Engine.Config().SessionCookieName); changed && cookie == "" {
		remove = append(remove, "cookie")
	}
	slices.Sort(remove)
	return remove
}

// withoutSessionCookie returns the Cookie header without the proxy's
// session and CSRF cookies, and whether anything was removed.
func withoutSessionCookie(h http.Header, name string) (string, bool) {
	if name == "" || !idheaders.HasCookie(h, name, name+"_csrf") {
		return "", false
	}
	c := http.Header{"Cookie": slices.Clone(h["Cookie"])}
	idheaders.RemoveCookie(c, name, name+"_csrf")
	return strings.Join(c["Cookie"], "; "), true
}

// extAuthzDeny turns a refusal into a DeniedHttpResponse that Envoy sends
// to the client as is. Browser page loads that need sign-in or step-up get
// a 302 to the proxy's sign-in or step-up URL (Envoy, like Traefik, relays
// the answer, so a redirect works); everything else gets the status,
// challenge headers and JSON body /.ztp/verify would answer. It returns
// nil and 499 if the caller has gone.
func extAuthzDeny(rec *headerRecorder, r *http.Request, x *decide.Exchange, err error) (*authv3.CheckResponse, int) {
	status, _ := decide.StatusOf(err)
	if status == 499 {
		return nil, status
	}
	redirectTo, ln := signInRedirect(err)
	if redirectTo != "" && r != nil && decide.IsNavigation(r) {
		if ln != nil {
			for _, c := range ln.Clear {
				http.SetCookie(rec, c)
			}
		}
		rec.Header().Set("Location", redirectTo)
		rec.WriteHeader(http.StatusFound)
	} else {
		// writeVerifyError redirects only on ?redirect=true of the verify
		// request itself; the original request's query must not count.
		writeVerifyError(rec, &http.Request{URL: &url.URL{}, Header: http.Header{}}, x, err)
	}
	rec.Header().Set("Cache-Control", "no-store")
	denied := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(rec.status)},
		Body:   rec.body.String(),
	}
	names := make([]string, 0, len(rec.Header()))
	for name := range rec.Header() {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		// Set-Cookie may repeat; every other header replaces Envoy's own
		// (its local reply has a text/plain content-type).
		action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if lower == "set-cookie" {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
		for _, v := range rec.Header()[name] {
			denied.Headers = append(denied.Headers, headerOption(lower, v, action))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(grpcCodeFor(status)), Message: http.StatusText(status)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}, rec.status
}

// headerOption builds one header mutation. Only append_action is set, not
// the deprecated append: Envoy versions that predate append_action read
// append's default (false, "set"), which is what OVERWRITE_IF_EXISTS_OR_ADD
// asks newer ones for.
func headerOption(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: action,
	}
}

// grpcCodeFor is the CheckResponse status for a refusal. Envoy only tests
// it against OK; the code is for its logs and for other ext_authz
// clients.
func grpcCodeFor(httpStatus int) codes.Code {
	switch {
	case httpStatus == http.StatusUnauthorized:
		return codes.Unauthenticated
	case httpStatus == http.StatusForbidden:
		return codes.PermissionDenied
	case httpStatus == http.StatusNotFound:
		return codes.NotFound
	case httpStatus == http.StatusServiceUnavailable:
		return codes.Unavailable
	case httpStatus >= 500:
		return codes.Internal
	}
	return codes.InvalidArgument
}
