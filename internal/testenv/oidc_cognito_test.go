package testenv

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOIDCProviderCognitoMode checks the Cognito-shaped access tokens and
// that the OP's own userinfo endpoint answers for them.
func TestOIDCProviderCognitoMode(t *testing.T) {
	users := []OIDCUser{{Sub: "7d9a3c52-0c5f-4b47-9c1b-3f0e6f1b2a10", Username: "ada", Email: "ada@ztp.test", Password: "pw", Groups: []string{"eng"}}}
	p := StartOIDC(t, OIDCOptions{Cognito: true, Users: users})
	web := p.Client(t, "ztproxy")
	tok := p.CodeFlowTokens(t, web, users[0], p.Resource, false)
	c := verifyAccessToken(t, p, tok.AccessToken)
	var extra struct {
		TokenUse string   `json:"token_use"`
		Username string   `json:"username"`
		Groups   []string `json:"cognito:groups"`
	}
	parts := strings.Split(tok.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &extra); err != nil {
		t.Fatal(err)
	}
	if c.Email != "" || extra.TokenUse != "access" || extra.Username != "ada" || len(extra.Groups) != 1 {
		t.Errorf("access token claims %s: want no email, token_use access, username ada, cognito:groups", payload)
	}
	if !strings.Contains(" "+c.Scope+" ", " openid ") || !strings.Contains(c.Scope, "api:read") {
		t.Errorf("scope %q: want the OpenID and the resource scopes", c.Scope)
	}
	userinfo := func(token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, p.UserinfoEndpoint, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		return resp.StatusCode, doc
	}
	status, doc := userinfo(tok.AccessToken)
	if status != http.StatusOK || doc["sub"] != users[0].Sub || doc["email"] != "ada@ztp.test" || doc["username"] != "ada" {
		t.Errorf("userinfo with the JWT access token: %d %v", status, doc)
	}
	// A JWT the OP did not sign is not accepted there.
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	if status, _ := userinfo(forged); status != http.StatusUnauthorized {
		t.Errorf("userinfo with a forged token: %d, want 401", status)
	}
}
