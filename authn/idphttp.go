package authn

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxIdPResponseBytes bounds every response body ztproxy reads from an
// identity provider or a trusted JWKS: discovery documents, key sets and
// token responses are a few KiB, so anything far larger is an attack on
// memory (a 96 MiB key set once raised the proxy's RSS tenfold).
const MaxIdPResponseBytes = 1 << 20

// defaultHTTPTimeout bounds one IdP request, reading its body included,
// when the configured client has no timeout of its own.
const defaultHTTPTimeout = 10 * time.Second

// ErrIdPRedirect is returned for an IdP response that redirects. Key
// material, discovery documents and token responses must come from the URL
// that was configured or discovered: following a redirect would let
// whoever controls the redirect target choose the keys ztproxy trusts.
var ErrIdPRedirect = errors.New("identity provider answered with a redirect; redirects are not followed")

// ErrIdPResponseTooLarge is returned when an IdP response body exceeds
// MaxIdPResponseBytes.
var ErrIdPResponseTooLarge = fmt.Errorf("identity provider response larger than %d bytes", MaxIdPResponseBytes)

// NewIdPHTTPClient returns the HTTP client for every call ztproxy makes to
// an identity provider or a trusted JWKS (discovery, JWKS, token, refresh):
// it follows no redirects, refuses plain http to hosts other than loopback,
// fails bodies larger than MaxIdPResponseBytes and has a timeout. base
// supplies the transport (proxy settings, test CAs) and the timeout; nil
// means http.DefaultTransport and defaultHTTPTimeout. base is not modified.
func NewIdPHTTPClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: defaultHTTPTimeout}
	var rt http.RoundTripper
	if base != nil {
		if base.Timeout > 0 {
			c.Timeout = base.Timeout
		}
		c.Jar = nil // cookies from an IdP are never needed server-side
		rt = base.Transport
	}
	if h, ok := rt.(*idpTransport); ok {
		rt = h.next // already hardened: do not wrap twice
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = &idpTransport{next: rt}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return ErrIdPRedirect }
	return c
}

// idpTransport enforces the scheme and body-size rules on every request,
// including ones to endpoints learned from a discovery document.
type idpTransport struct{ next http.RoundTripper }

func (t *idpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkEndpointURL(req.URL.String()); err != nil {
		return nil, fmt.Errorf("authn: IdP request refused: %w", err)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxIdPResponseBytes {
		resp.Body.Close()
		return nil, ErrIdPResponseTooLarge
	}
	resp.Body = &limitedBody{r: resp.Body, left: MaxIdPResponseBytes}
	return resp, nil
}

// limitedBody fails, rather than truncates, a body longer than its limit,
// so a cut-off document is never parsed as if it were whole.
type limitedBody struct {
	r    io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrIdPResponseTooLarge
	}
	// Read one byte past the limit to tell "exactly at" from "over".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, ErrIdPResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }
