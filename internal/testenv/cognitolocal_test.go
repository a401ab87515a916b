package testenv

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TestCognitoLocal checks the emulator's token shapes and its discovery,
// which the Cognito tests rely on.
func TestCognitoLocal(t *testing.T) {
	c := StartCognitoLocal(t)
	pool := c.CreateUserPool(t, "staff")
	client := c.CreateAppClient(t, pool, "api-cli")
	sub := c.CreateUser(t, pool, CognitoUser{Username: "ada", Password: "Passw0rd!", Email: "ada@corp.test", Groups: []string{"eng"}})
	tok := c.SignIn(t, client, "ada", "Passw0rd!")
	claims := func(raw string) map[string]any {
		t.Helper()
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWS: %q", raw)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	at := claims(tok.AccessToken)
	if at["iss"] != c.Issuer(pool) || at["sub"] != sub || at["token_use"] != "access" || at["client_id"] != client ||
		at["username"] != "ada" || at["aud"] != nil || at["email"] != nil {
		t.Errorf("access token claims %v", at)
	}
	id := claims(tok.IDToken)
	if id["aud"] != client || id["token_use"] != "id" || id["cognito:username"] != "ada" || id["email"] != "ada@corp.test" {
		t.Errorf("ID token claims %v", id)
	}
	var doc map[string]any
	if err := getJSON(c.Issuer(pool)+"/.well-known/openid-configuration", &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != c.Issuer(pool) || doc["jwks_uri"] != c.Issuer(pool)+"/.well-known/jwks.json" || doc["authorization_endpoint"] != nil {
		t.Errorf("discovery %v: want this origin's issuer and jwks_uri, no authorization_endpoint", doc)
	}
	var jwks struct{ Keys []map[string]any }
	if err := getJSON(c.Issuer(pool)+"/.well-known/jwks.json", &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("JWKS %v %v", jwks, err)
	}
}
