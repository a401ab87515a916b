package op

import (
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestMintAccessToken: issue 15.5, `ztproxy demo idp` hands out bearer
// tokens; they verify against the provider's own discovery and JWKS with
// the audience asked for, and carry what ztproxy's policies read.
func TestMintAccessToken(t *testing.T) {
	e := start(t)
	u := testUsers[0]
	raw, exp, err := e.p.MintAccessToken(u.Username, "https://api.example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expires in %v", d)
	}
	v := e.provider.Verifier(&oidc.Config{ClientID: "https://api.example.com"})
	tok, err := v.Verify(e.ctx, raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Groups        []string `json:"groups"`
	}
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if tok.Subject != u.Sub || claims.Email != u.Email || !claims.EmailVerified || !slices.Equal(claims.Groups, u.Groups) {
		t.Errorf("claims sub %q %+v", tok.Subject, claims)
	}
	if _, err := e.provider.Verifier(&oidc.Config{ClientID: "https://other.example"}).Verify(e.ctx, raw); err == nil {
		t.Error("the token verified for another audience")
	}
	if _, _, err := e.p.MintAccessToken("nobody", "https://api.example.com", time.Hour); err == nil {
		t.Error("a token for an unknown user")
	}
}
