package awscreds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultFederationEndpoint is the AWS sign-in federation endpoint.
const DefaultFederationEndpoint = "https://signin.aws.amazon.com/federation"

// ConsoleURL exchanges creds for a sign-in token at the federation endpoint
// (DefaultFederationEndpoint when empty) and returns the URL that signs the
// browser into the AWS console at destination. issuer is the URL users are
// sent to when the console session ends (the proxy). The returned URL is a
// bearer credential for about 15 minutes; do not log it.
func ConsoleURL(ctx context.Context, creds Credentials, issuer, destination string, client *http.Client, federationEndpoint string) (string, error) {
	if federationEndpoint == "" {
		federationEndpoint = DefaultFederationEndpoint
	}
	if client == nil {
		client = http.DefaultClient
	}
	if u, err := url.Parse(destination); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("awscreds: console destination must be an absolute https URL, got %q", destination)
	}
	session, err := json.Marshal(struct {
		SessionID    string `json:"sessionId"`
		SessionKey   string `json:"sessionKey"`
		SessionToken string `json:"sessionToken"`
	}{creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken})
	if err != nil {
		return "", fmt.Errorf("awscreds: encoding session: %w", err)
	}
	// SessionDuration is omitted on purpose: the federation endpoint rejects
	// it for credentials from AssumeRole*, and the console session then
	// follows the credentials' own lifetime.
	query := url.Values{"Action": {"getSigninToken"}, "Session": {string(session)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, federationEndpoint+"?"+query.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("awscreds: federation request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL carries the secret; report the failure without it.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return "", fmt.Errorf("awscreds: getSigninToken: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("awscreds: reading getSigninToken response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("awscreds: getSigninToken: HTTP %d", resp.StatusCode)
	}
	var token struct{ SigninToken string }
	if err := json.Unmarshal(body, &token); err != nil || token.SigninToken == "" {
		return "", errors.New("awscreds: getSigninToken: response has no SigninToken")
	}
	login := url.Values{
		"Action":      {"login"},
		"Issuer":      {issuer},
		"Destination": {destination},
		"SigninToken": {token.SigninToken},
	}
	return federationEndpoint + "?" + login.Encode(), nil
}

// CredentialProcessJSON renders creds in the AWS CLI credential_process
// format.
func CredentialProcessJSON(creds Credentials) []byte {
	out, _ := json.Marshal(struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}{1, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, creds.Expiration.UTC().Format(time.RFC3339)})
	return out
}
