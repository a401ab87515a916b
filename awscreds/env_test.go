package awscreds_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/awscreds"
	"ztproxy/identity"
	"ztproxy/internal/stsdouble"
)

const (
	account      = "123456789012"
	proxyKeyID   = "AKIAPROXYEXAMPLE0001"
	proxySecret  = "proxy/secret/EXAMPLEKEY0000000000000000"
	analystARN   = "arn:aws:iam::123456789012:role/analyst"
	webReaderARN = "arn:aws:iam::123456789012:role/web-reader"
	audience     = "ztproxy-aws"
)

// fakeClock is a settable clock shared by the minter and the double.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// issuer is an in-test OIDC issuer: a JWKS endpoint and a signing key.
type issuer struct {
	URL    string
	signer jose.Signer
}

func startIssuer(t testing.TB) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{URL: srv.URL, signer: signer}
}

// token issues an ID token; mutate may change the claims before signing.
func (i *issuer) token(t testing.TB, now time.Time, sub string, mutate func(*jwt.Claims)) string {
	t.Helper()
	claims := jwt.Claims{
		Issuer: i.URL, Subject: sub, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	if mutate != nil {
		mutate(&claims)
	}
	raw, err := jwt.Signed(i.signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// env is a minter wired to an STS double and an OIDC issuer through real
// HTTP, with one fixed clock.
type env struct {
	sts    *stsdouble.Server
	idp    *issuer
	clock  *fakeClock
	minter *awscreds.Minter
	cfg    awscreds.Config
}

func analystRole() awscreds.RoleConfig {
	return awscreds.RoleConfig{
		Name: "analyst", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour,
		SessionTags: map[string]string{
			"email":  "{{.Email}}",
			"groups": "{{.Groups}}",
			"risk":   "{{.RiskLevel}}",
		},
		TransitiveTagKeys: []string{"email"},
		SessionPolicy:     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/{{.Email}}/*"}]}`,
		ExternalID:        "ext-123",
	}
}

func webRole() awscreds.RoleConfig {
	return awscreds.RoleConfig{Name: "web", RoleARN: webReaderARN, Mode: awscreds.ModeWebIdentity, Duration: time.Hour}
}

func newEnv(t testing.TB, mutate func(*awscreds.Config)) *env {
	t.Helper()
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	idp := startIssuer(t)
	dbl := stsdouble.Start(t, stsdouble.Config{
		Region:     "us-east-1",
		AccessKeys: map[string]string{proxyKeyID: proxySecret},
		Roles: []stsdouble.Role{
			{ARN: analystARN, MaxSessionDuration: 12 * time.Hour, ExternalID: "ext-123"},
			{ARN: webReaderARN},
		},
		OIDC: &stsdouble.OIDC{Issuer: idp.URL, Audience: audience, JWKSURL: idp.URL},
		Now:  clock.Now,
	})
	cfg := awscreds.Config{
		Region: "us-east-1", STSEndpoint: dbl.URL,
		Roles:            []awscreds.RoleConfig{analystRole(), webRole()},
		Now:              clock.Now,
		Credentials:      credentials.NewStaticCredentialsProvider(proxyKeyID, proxySecret, ""),
		RetryMaxAttempts: 4,
		RetryMaxBackoff:  5 * time.Millisecond,
		Logger:           slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := awscreds.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{sts: dbl, idp: idp, clock: clock, minter: m, cfg: cfg}
}

func user(name string) identity.Principal {
	return identity.Principal{
		Kind: identity.KindUser, ID: identity.UserID("https://idp.example.com", name),
		Issuer: "https://idp.example.com", Subject: name, Email: name + "@example.com", EmailVerified: true,
		Groups: []string{"engineering", "aws-analysts"}, AuthKind: identity.AuthBrowser,
	}
}

func (e *env) get(t testing.TB, req awscreds.Request) awscreds.Credentials {
	t.Helper()
	creds, err := e.minter.Credentials(context.Background(), req)
	if err != nil {
		t.Fatalf("Credentials(%s, %s): %v", req.Principal.ID, req.Role, err)
	}
	return creds
}
