package authn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 21.4: a discovery document without authorization_endpoint (an
// Amazon Cognito user pool without a domain) made /.ztp/login redirect to
// "?client_id=…" on the proxy's own origin. Every document browser
// sign-in cannot use now ends in one clear page: 502 idp_misconfigured,
// naming what is wrong, with no retry link.
func TestSignInDiscoveryMisconfigured(t *testing.T) {
	tests := []struct {
		name string
		edit func(doc map[string]any)
		want string
	}{
		{"no authorization_endpoint", func(doc map[string]any) { delete(doc, "authorization_endpoint") },
			"no authorization_endpoint (an Amazon Cognito user pool needs a domain"},
		{"no token_endpoint", func(doc map[string]any) { delete(doc, "token_endpoint") }, "no token_endpoint"},
		{"no jwks_uri", func(doc map[string]any) { delete(doc, "jwks_uri") }, "no jwks_uri"},
		{"plain http authorization_endpoint", func(doc map[string]any) { doc["authorization_endpoint"] = "http://login.example.com/authorize" },
			"authorization_endpoint is unusable"},
		{"other issuer", func(doc map[string]any) {
			doc["issuer"] = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"
		},
			`names the issuer "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSignInFixture(t)
			f.idp.EditDiscovery(tt.edit)
			_, _, err := f.b.LoginRedirect(context.Background(), httptest.NewRequest("GET", testOrigin+LoginPath, nil), "", "/", LoginOptions{MaxAge: -1})
			var se *SignInError
			if !errors.As(err, &se) {
				t.Fatalf("LoginRedirect = %v, want a *SignInError", err)
			}
			if se.Status != http.StatusBadGateway || se.Code != CodeIdPMisconfigured || se.Title != "Identity provider not set up for sign-in" {
				t.Errorf("SignInError %d %s %q, want 502 %s", se.Status, se.Code, se.Title, CodeIdPMisconfigured)
			}
			if !strings.Contains(se.Description, tt.want) {
				t.Errorf("description %q does not say %q", se.Description, tt.want)
			}
		})
	}
}
