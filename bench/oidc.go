package main

// The npm oidc-provider test OP (internal/testenv/oidcprovider/server.mjs),
// started the way internal/testenv.StartOIDC does, and scripted sign-ins
// through it with a cookie-keeping http.Client.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	apiResource = "https://api.ztp.test"
	benchUA     = "ztp-bench/1"
)

type opUser struct {
	Sub, Email, Password string
	Groups               []string
}

type opClient struct {
	ID, Secret   string
	RedirectURIs []string
	PostLogout   []string
	GrantTypes   []string
}

type op struct {
	issuer, authz, token string
	proc                 *process
}

func startOP(repo, workDir, logDir string, clients []opClient, users []opUser) (*op, error) {
	dir := filepath.Join(repo, "internal", "testenv", "oidcprovider")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		return nil, fmt.Errorf("npm oidc-provider is not installed in %s (run .ci/run or npm ci there): %w", dir, err)
	}
	cl := []map[string]any{}
	for _, c := range clients {
		gt := c.GrantTypes
		if len(gt) == 0 {
			gt = []string{"authorization_code", "refresh_token", "client_credentials"}
		}
		cl = append(cl, map[string]any{"client_id": c.ID, "client_secret": c.Secret,
			"redirect_uris": nz(c.RedirectURIs), "post_logout_redirect_uris": nz(c.PostLogout), "grant_types": gt})
	}
	us := []map[string]any{}
	for _, u := range users {
		us = append(us, map[string]any{"sub": u.Sub, "email": u.Email, "password": u.Password, "groups": nz(u.Groups)})
	}
	cfg := map[string]any{
		"clients":   cl,
		"users":     us,
		"resources": []map[string]any{{"indicator": apiResource, "scope": "api:read api:write"}},
		// Long enough for a full run: an expiring token would measure the
		// 401 path (and fail the run).
		"ttl":                map[string]int{"AccessToken": 4 * 3600, "IdToken": 4 * 3600, "Session": 4 * 3600},
		"rotateRefreshToken": true,
		"acrValues":          []string{"urn:ztp:loa:1", "urn:ztp:loa:mfa"},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(workDir, "oidc-config.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr()
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		issuer := "http://" + addr
		p, got, err := startProcess("oidc-provider", logDir, []string{"PORT=" + port, "ISSUER=" + issuer}, true,
			"node", filepath.Join(dir, "server.mjs"), cfgPath)
		if err != nil {
			lastErr = err
			if strings.Contains(err.Error(), "EADDRINUSE") {
				continue
			}
			return nil, err
		}
		if got != issuer {
			p.stop()
			return nil, fmt.Errorf("OP announced %q, want %q", got, issuer)
		}
		o := &op{issuer: issuer, proc: p}
		var doc struct {
			Authz string `json:"authorization_endpoint"`
			Token string `json:"token_endpoint"`
		}
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			p.stop()
			return nil, err
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			p.stop()
			return nil, err
		}
		o.authz, o.token = doc.Authz, doc.Token
		return o, nil
	}
	return nil, lastErr
}

func nz(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type uaTransport struct{ base http.RoundTripper }

func (t uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", benchUA)
	return t.base.RoundTrip(r)
}

// browserClient keeps cookies and sends the benchmark's User-Agent (the same
// one wrk sends, so the risk engine sees one browser family).
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: uaTransport{tr}}
}

// login GETs startURL with c, which a relying party redirects to the OP; on
// the OP's login form it signs in as u (with the second-factor box ticked
// when mfa) and returns the final response after all redirects. If the OP
// session already exists, the first GET goes straight through.
func (o *op) login(c *http.Client, startURL string, u opUser, mfa bool) (*http.Response, error) {
	resp, err := c.Get(startURL)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", startURL, err)
	}
	page := resp.Request.URL
	if !(page.Scheme+"://"+page.Host == o.issuer && strings.HasPrefix(page.Path, "/interaction/")) || resp.StatusCode != 200 {
		return resp, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {u.Sub}, "password": {u.Password}}
	if mfa {
		form.Set("mfa", "1")
	}
	resp, err = c.PostForm(strings.TrimSuffix(page.String(), "/")+"/login", form)
	if err != nil {
		return nil, fmt.Errorf("posting login for %s: %w", u.Sub, err)
	}
	return resp, nil
}

// codeFlowAccessToken drives authorization code + PKCE for u against the
// client and returns a JWT access token for apiResource (aud = apiResource,
// with the user's email and groups).
func (o *op) codeFlowAccessToken(client opClient, u opUser, mfa bool) (string, error) {
	redirect := client.RedirectURIs[0]
	verifier, state, nonce := randToken(), randToken(), randToken()
	ch := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {redirect},
		"state": {state}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(ch[:])},
		"code_challenge_method": {"S256"}, "resource": {apiResource},
		"scope": {"openid email groups profile offline_access api:read api:write"},
	}
	c := browserClient()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := o.login(c, o.authz+"?"+q.Encode(), u, mfa)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("code flow ended at %s %s", resp.Request.URL, resp.Status)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != state {
		return "", fmt.Errorf("bad callback %s", loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "resource": {apiResource}}
	req, _ := http.NewRequest(http.MethodPost, o.token, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(client.Secret))
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer tr.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(tr.Body)
	if tr.StatusCode != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: %s %s", tr.Status, body)
	}
	return tok.AccessToken, nil
}

func randToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookieHeader returns "name=value" for the named cookie c holds for base.
func cookieHeader(c *http.Client, base, name string) (string, error) {
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name || strings.HasPrefix(ck.Name, name+"_") {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("no %s cookie for %s", name, base)
	}
	return strings.Join(parts, "; "), nil
}
