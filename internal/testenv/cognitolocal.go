package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// CognitoLocal is a running npm cognito-local, an Amazon Cognito emulator:
// the cognito-idp JSON API (user pools, app clients, users, groups,
// InitiateAuth) and, per pool, /<pool id>/.well-known/openid-configuration
// and jwks.json. Its tokens have Cognito's shapes: access tokens with
// token_use "access", client_id, username, scope and cognito:groups and no
// aud or email; ID tokens with aud = the client, token_use "id",
// cognito:username, email.
//
// Where it is not Cognito (tests must not tune ztproxy to these):
//   - one signing key (kid "CognitoLocal") for every pool: a token of
//     another pool differs only by its iss;
//   - client secrets are never checked (no SECRET_HASH, any client_secret);
//   - no /oauth2/userInfo, and its discovery names no authorization,
//     token or userinfo endpoint (like a pool without a domain);
//   - its hosted-UI code flow puts no nonce or at_hash in ID tokens;
//   - access tokens carry only the scope aws.cognito.signin.user.admin.
type CognitoLocal struct {
	// Endpoint is http://127.0.0.1:<port>, the cognito-idp API and the
	// origin of every pool's issuer.
	Endpoint string

	proc *nodeProcess
}

// StartCognitoLocal starts cognito-local (internal/testenv/cognitolocal) on a
// free loopback port with empty state and stops it when the test ends.
func StartCognitoLocal(t testing.TB) *CognitoLocal {
	t.Helper()
	dir := nodePackageDir(t, "cognitolocal")
	c := &CognitoLocal{}
	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		proc, url, err := startNode("cognito-local", dir, "server.mjs", nil,
			[]string{"PORT=" + strconv.Itoa(port), "DATA_DIR=" + t.TempDir()})
		if addrInUse(err) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		c.proc, c.Endpoint = proc, url
		t.Cleanup(func() {
			proc.stop()
			if t.Failed() {
				t.Logf("testenv: cognito-local output (tail):\n%s", proc.log.String())
			}
		})
		return c
	}
}

// Issuer is the iss of the tokens of user pool poolID.
func (c *CognitoLocal) Issuer(poolID string) string { return c.Endpoint + "/" + poolID }

// Call invokes a cognito-idp API action (e.g. "CreateUserPool") with input
// and decodes the answer into out (may be nil). A non-200 answer fails the
// test.
func (c *CognitoLocal) Call(t testing.TB, action string, input, out any) {
	t.Helper()
	if status, body := c.CallStatus(t, action, input); status != http.StatusOK {
		t.Fatalf("testenv: cognito-local %s: %d %s", action, status, body)
	} else if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("testenv: cognito-local %s: %v: %s", action, err, body)
		}
	}
}

// CallStatus is Call for answers that may be errors: it returns the status
// and the raw body.
func (c *CognitoLocal) CallStatus(t testing.TB, action string, input any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+action)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("testenv: cognito-local %s: %v", action, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// CognitoUser is a user CreateUser adds to a pool.
type CognitoUser struct {
	Username, Password, Email string
	Groups                    []string
}

// CreateUserPool creates a user pool and returns its id.
func (c *CognitoLocal) CreateUserPool(t testing.TB, name string) string {
	t.Helper()
	var out struct{ UserPool struct{ Id string } }
	c.Call(t, "CreateUserPool", map[string]any{"PoolName": name}, &out)
	return out.UserPool.Id
}

// CreateAppClient creates an app client of the pool and returns its id.
func (c *CognitoLocal) CreateAppClient(t testing.TB, poolID, name string, callbackURLs ...string) string {
	t.Helper()
	var out struct{ UserPoolClient struct{ ClientId string } }
	c.Call(t, "CreateUserPoolClient", map[string]any{
		"UserPoolId": poolID, "ClientName": name, "CallbackURLs": callbackURLs,
		"ExplicitAuthFlows": []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
	}, &out)
	return out.UserPoolClient.ClientId
}

// CreateUser adds a confirmed user with a permanent password, a verified
// email and the given groups (created as needed), and returns its sub.
func (c *CognitoLocal) CreateUser(t testing.TB, poolID string, u CognitoUser) string {
	t.Helper()
	var out struct {
		User struct {
			Attributes []struct{ Name, Value string }
		}
	}
	c.Call(t, "AdminCreateUser", map[string]any{
		"UserPoolId": poolID, "Username": u.Username, "MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{{"Name": "email", "Value": u.Email}, {"Name": "email_verified", "Value": "true"}},
	}, &out)
	c.Call(t, "AdminSetUserPassword", map[string]any{
		"UserPoolId": poolID, "Username": u.Username, "Password": u.Password, "Permanent": true,
	}, nil)
	for _, g := range u.Groups {
		if status, _ := c.CallStatus(t, "GetGroup", map[string]any{"UserPoolId": poolID, "GroupName": g}); status != http.StatusOK {
			c.Call(t, "CreateGroup", map[string]any{"UserPoolId": poolID, "GroupName": g}, nil)
		}
		c.Call(t, "AdminAddUserToGroup", map[string]any{"UserPoolId": poolID, "Username": u.Username, "GroupName": g}, nil)
	}
	for _, a := range out.User.Attributes {
		if a.Name == "sub" {
			return a.Value
		}
	}
	t.Fatalf("testenv: cognito-local created %s without a sub", u.Username)
	return ""
}

// CognitoTokens are the tokens of an InitiateAuth.
type CognitoTokens struct {
	AccessToken, IDToken, RefreshToken string
}

// SignIn runs InitiateAuth (USER_PASSWORD_AUTH) for the app client.
func (c *CognitoLocal) SignIn(t testing.TB, clientID, username, password string) CognitoTokens {
	t.Helper()
	var out struct {
		ChallengeName        string
		AuthenticationResult struct{ AccessToken, IdToken, RefreshToken string }
	}
	c.Call(t, "InitiateAuth", map[string]any{
		"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"USERNAME": username, "PASSWORD": password},
	}, &out)
	if out.ChallengeName != "" || out.AuthenticationResult.AccessToken == "" {
		t.Fatalf("testenv: cognito-local InitiateAuth for %s: challenge %q, no tokens", username, out.ChallengeName)
	}
	r := out.AuthenticationResult
	return CognitoTokens{AccessToken: r.AccessToken, IDToken: r.IdToken, RefreshToken: r.RefreshToken}
}

// CreatePoolWithUser creates a pool with one app client and one user
// (password Passw0rd!) and returns that user's tokens: a token of another
// pool, for tests that must refuse it.
func (c *CognitoLocal) CreatePoolWithUser(t testing.TB, poolName, username string) CognitoTokens {
	t.Helper()
	pool := c.CreateUserPool(t, poolName)
	client := c.CreateAppClient(t, pool, poolName+"-client")
	c.CreateUser(t, pool, CognitoUser{Username: username, Password: "Passw0rd!", Email: username + "@" + poolName + ".test"})
	return c.SignIn(t, client, username, "Passw0rd!")
}

// String describes the emulator for test logs.
func (c *CognitoLocal) String() string { return fmt.Sprintf("cognito-local %s", c.Endpoint) }
