package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/sync/singleflight"
)

// ErrIdPUnavailable is wrapped by errors caused by an IdP whose discovery
// document could not be fetched, so callers can tell an outage from a bad
// token or a bad sign-in.
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// discoveryRetryInterval is the least time between two discovery attempts
// for one IdP, so an IdP outage does not turn every request into an
// outbound call.
const discoveryRetryInterval = 5 * time.Second

// discoveryTimeout bounds one discovery attempt even if the configured HTTP
// client has no timeout of its own.
const discoveryTimeout = 10 * time.Second

// discovery fetches an IdP's OpenID configuration on first use, so the
// proxy starts while the IdP is down; a failed attempt is retried by a
// later request, at most once per discoveryRetryInterval. Concurrent
// callers share one attempt, and an attempt is not cancelled by the
// request that started it.
type discovery[T any] struct {
	name, issuer string
	client       *http.Client
	now          func() time.Time
	logger       *slog.Logger
	// build turns the discovered provider into what the caller needs.
	build func(*oidc.Provider) (*T, error)

	value atomic.Pointer[T]
	group singleflight.Group

	mu          sync.Mutex
	lastFailure time.Time // guarded by mu
	lastErr     error     // guarded by mu
}

// get returns the built value, running discovery if it has not yet
// succeeded.
func (d *discovery[T]) get(ctx context.Context) (*T, error) {
	if v := d.value.Load(); v != nil {
		return v, nil
	}
	d.mu.Lock()
	if !d.lastFailure.IsZero() && d.now().Sub(d.lastFailure) < discoveryRetryInterval {
		err := d.lastErr
		d.mu.Unlock()
		return nil, err
	}
	d.mu.Unlock()

	ch := d.group.DoChan("discover", func() (any, error) {
		if v := d.value.Load(); v != nil {
			return v, nil
		}
		v, err := d.run()
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.lastFailure, d.lastErr = d.now(), err
			return nil, err
		}
		d.lastFailure, d.lastErr = time.Time{}, nil
		d.value.Store(v)
		return v, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*T), nil
	}
}

// run fetches the discovery document; go-oidc rejects a document whose
// issuer differs from the configured one.
func (d *discovery[T]) run() (*T, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), d.client), discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, d.issuer)
	err = misconfiguredIssuer(err)
	var v *T
	if err == nil {
		v, err = d.build(provider)
	}
	if err != nil {
		d.logger.Warn("authn: OIDC discovery failed", "idp", d.name, "error", err)
		return nil, fmt.Errorf("%w: discovery for %q: %w", ErrIdPUnavailable, d.name, err)
	}
	d.logger.Info("authn: OIDC discovery succeeded", "idp", d.name)
	return v, nil
}

// providerMetadata are the endpoints ztproxy uses from a discovery
// document.
type providerMetadata struct {
	JWKSURL       string `json:"jwks_uri"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	UserInfo      string `json:"userinfo_endpoint"`
	EndSession    string `json:"end_session_endpoint"`
	Revocation    string `json:"revocation_endpoint"`
}

// IdPMisconfiguredError is a discovery document ztproxy cannot use for what
// the IdP is configured for: a required endpoint is missing, an endpoint
// is not https, or the document names another issuer. The IdP answered, so
// retrying does not help until the IdP's setup or ztproxy's configuration
// changes. Problems are safe to show: they name endpoints, never secrets.
type IdPMisconfiguredError struct {
	Problems []string
}

func (e *IdPMisconfiguredError) Error() string {
	return "identity provider misconfigured: " + strings.Join(e.Problems, "; ")
}

// discoveredEndpoints reads the endpoints of a discovery document and
// holds them to the rules of configured URLs: absolute https (http only
// for loopback hosts). jwks_uri is required, and with forSignIn the
// authorization and token endpoints too; the others are checked when
// present, so a document cannot send the browser, the code or the refresh
// token anywhere in clear text. Every problem is an *IdPMisconfiguredError.
func discoveredEndpoints(provider *oidc.Provider, forSignIn bool) (*providerMetadata, error) {
	var meta providerMetadata
	if err := provider.Claims(&meta); err != nil {
		return nil, &IdPMisconfiguredError{Problems: []string{"the discovery document is not valid JSON: " + err.Error()}}
	}
	if problems := meta.problems(forSignIn); len(problems) > 0 {
		return nil, &IdPMisconfiguredError{Problems: problems}
	}
	return &meta, nil
}

// problems lists what makes meta unusable; see discoveredEndpoints.
func (meta *providerMetadata) problems(forSignIn bool) []string {
	var problems []string
	required := map[string]bool{"jwks_uri": true, "authorization_endpoint": forSignIn, "token_endpoint": forSignIn}
	for _, ep := range []struct{ name, url string }{
		{"jwks_uri", meta.JWKSURL}, {"authorization_endpoint", meta.Authorization},
		{"token_endpoint", meta.Token}, {"userinfo_endpoint", meta.UserInfo},
		{"end_session_endpoint", meta.EndSession}, {"revocation_endpoint", meta.Revocation},
	} {
		switch {
		case ep.url == "" && required[ep.name]:
			why := ""
			if ep.name == "authorization_endpoint" {
				why = " (an Amazon Cognito user pool needs a domain for browser sign-in)"
			}
			problems = append(problems, "the discovery document has no "+ep.name+why)
		case ep.url == "":
		default:
			if err := checkEndpointURL(ep.url); err != nil {
				problems = append(problems, "the discovery document's "+ep.name+" is unusable: "+err.Error())
			}
		}
	}
	return problems
}

// misconfiguredIssuer turns go-oidc's issuer mismatch into an
// *IdPMisconfiguredError; other errors are returned as they are.
func misconfiguredIssuer(err error) error {
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		return &IdPMisconfiguredError{Problems: []string{fmt.Sprintf(
			"the discovery document names the issuer %q, not the configured %q: they must be equal character for character",
			sanitizeText(mismatch.Discovered), mismatch.Provided)}}
	}
	return err
}
