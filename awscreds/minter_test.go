package awscreds_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/awscreds"
)

func TestAssumeRoleCarriesIdentity(t *testing.T) {
	e := newEnv(t, nil)
	alice := user("alice")
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: alice, RiskLevel: "low", Route: "data"})

	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SecretAccessKey == "" || creds.SessionToken == "" {
		t.Fatalf("incomplete credentials: akid=%q", creds.AccessKeyID)
	}
	if want := e.clock.Now().Add(time.Hour); !creds.Expiration.Equal(want) {
		t.Errorf("Expiration = %v, want %v", creds.Expiration, want)
	}
	if creds.SourceIdentity != "alice@example.com" {
		t.Errorf("SourceIdentity = %q", creds.SourceIdentity)
	}
	if !strings.HasPrefix(creds.AssumedRoleARN, "arn:aws:sts::"+account+":assumed-role/analyst/alice-") {
		t.Errorf("AssumedRoleARN = %q", creds.AssumedRoleARN)
	}
	p := e.sts.LastRequest().Params
	checks := map[string]string{
		"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": analystARN, "DurationSeconds": "3600",
		"ExternalId": "ext-123", "SourceIdentity": "alice@example.com",
		"Tags.member.1.Key": "email", "Tags.member.1.Value": "alice@example.com",
		"Tags.member.2.Key": "groups", "Tags.member.2.Value": "engineering:aws-analysts",
		"Tags.member.3.Key": "risk", "Tags.member.3.Value": "low",
		"TransitiveTagKeys.member.1": "email",
	}
	for k, want := range checks {
		if got := p.Get(k); got != want {
			t.Errorf("param %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(p.Get("Policy"), "arn:aws:s3:::data/alice@example.com/*") {
		t.Errorf("Policy = %q", p.Get("Policy"))
	}
	if name := p.Get("RoleSessionName"); !strings.HasPrefix(name, "alice-") || len(name) != len("alice-")+8 {
		t.Errorf("RoleSessionName = %q", name)
	}

	// The minted credentials are real to the double: they sign a call.
	client := sts.New(sts.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.sts.URL),
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
	})
	who, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with minted credentials: %v", err)
	}
	if aws.ToString(who.Arn) != creds.AssumedRoleARN {
		t.Errorf("caller = %q, want %q", aws.ToString(who.Arn), creds.AssumedRoleARN)
	}
}

func TestAssumeRoleSignatureIsVerified(t *testing.T) {
	for _, tc := range []struct {
		name, keyID, secret, code string
	}{
		{"wrong secret", proxyKeyID, "not-the-secret", "SignatureDoesNotMatch"},
		{"unknown key", "AKIAUNKNOWN000000000", proxySecret, "InvalidClientTokenId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *awscreds.Config) {
				c.Credentials = credentials.NewStaticCredentialsProvider(tc.keyID, tc.secret, "")
			})
			_, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "analyst", Principal: user("alice")})
			if got := awscreds.STSErrorCode(err); got != tc.code {
				t.Fatalf("error code = %q (%v), want %s", got, err, tc.code)
			}
			if errors.Is(err, awscreds.ErrSTSUnavailable) {
				t.Errorf("a refused signature must not look like an outage: %v", err)
			}
			if n := e.sts.Calls("AssumeRole"); n != 1 {
				t.Errorf("STS calls = %d, want 1 (no retry of a non-retryable error)", n)
			}
		})
	}
}

func TestWebIdentity(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	alice := user("alice")
	good := e.idp.token(t, now, "alice", nil)
	creds := e.get(t, awscreds.Request{Role: "web", Principal: alice, WebIdentityToken: good})
	if !strings.HasPrefix(creds.AssumedRoleARN, "arn:aws:sts::"+account+":assumed-role/web-reader/alice-") {
		t.Errorf("AssumedRoleARN = %q", creds.AssumedRoleARN)
	}
	if got := e.sts.LastRequest().Params.Get("WebIdentityToken"); got != good {
		t.Errorf("token not passed through")
	}
	if e.sts.LastRequest().AccessKeyID != "" {
		t.Errorf("AssumeRoleWithWebIdentity must be unsigned")
	}

	other := startIssuer(t) // same issuer URL claim, different key
	for _, tc := range []struct {
		name, token, code string
	}{
		{"wrong audience", e.idp.token(t, now, "bob", func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), "InvalidIdentityToken"},
		{"expired", e.idp.token(t, now.Add(-2*time.Hour), "bob", nil), "ExpiredTokenException"},
		{"wrong issuer", e.idp.token(t, now, "bob", func(c *jwt.Claims) { c.Issuer = "https://evil.example.com" }), "InvalidIdentityToken"},
		{"unknown key", other.token(t, now, "bob", func(c *jwt.Claims) { c.Issuer = e.idp.URL }), "InvalidIdentityToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "web", Principal: user("bob-" + tc.name), WebIdentityToken: tc.token})
			if got := awscreds.STSErrorCode(err); got != tc.code {
				t.Fatalf("error code = %q (%v), want %s", got, err, tc.code)
			}
		})
	}
	t.Run("missing token", func(t *testing.T) {
		before := e.sts.Calls("AssumeRoleWithWebIdentity")
		if _, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "web", Principal: user("carol")}); err == nil {
			t.Fatal("no error without a token")
		}
		if e.sts.Calls("AssumeRoleWithWebIdentity") != before {
			t.Error("STS was called without a token")
		}
	})
}

func TestCacheUntilFiveMinutesBeforeExpiry(t *testing.T) {
	var hits int
	e := newEnv(t, func(c *awscreds.Config) { c.OnCacheHit = func(string) { hits++ } })
	req := awscreds.Request{Role: "analyst", Principal: user("alice")}
	first := e.get(t, req)
	if again := e.get(t, req); again.AccessKeyID != first.AccessKeyID {
		t.Fatal("second request minted new credentials")
	}
	e.clock.Advance(55*time.Minute - time.Second) // 5m01s before expiry
	if again := e.get(t, req); again.AccessKeyID != first.AccessKeyID {
		t.Fatal("credentials renewed too early")
	}
	if n := e.sts.Calls("AssumeRole"); n != 1 || hits != 2 {
		t.Fatalf("STS calls = %d, hits = %d; want 1 and 2", n, hits)
	}
	e.clock.Advance(time.Second) // exactly 5m before expiry
	renewed := e.get(t, req)
	if renewed.AccessKeyID == first.AccessKeyID || e.sts.Calls("AssumeRole") != 2 {
		t.Fatal("credentials not renewed 5 minutes before expiry")
	}
}

func TestSessionExpiryCapsLifetime(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice"), SessionExpiry: now.Add(20 * time.Minute)})
	if !creds.Expiration.Equal(now.Add(20 * time.Minute)) {
		t.Errorf("Expiration = %v, want the session's end", creds.Expiration)
	}
	if got := e.sts.LastRequest().Params.Get("DurationSeconds"); got != "1200" {
		t.Errorf("DurationSeconds = %s, want 1200", got)
	}
	_, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "analyst", Principal: user("bob"), SessionExpiry: now.Add(14 * time.Minute)})
	if !errors.Is(err, awscreds.ErrSessionTooShort) {
		t.Fatalf("err = %v, want ErrSessionTooShort", err)
	}
	if n := e.sts.Calls("AssumeRole"); n != 1 {
		t.Errorf("STS calls = %d, want 1", n)
	}
	// A later session of the same user must not get credentials that
	// outlive an earlier, shorter one... and vice versa: cached credentials
	// beyond this session's end are not served.
	short := e.get(t, awscreds.Request{Role: "analyst", Principal: user("carol"), SessionExpiry: now.Add(30 * time.Minute)})
	long := e.get(t, awscreds.Request{Role: "analyst", Principal: user("carol"), SessionExpiry: now.Add(2 * time.Hour)})
	if long.AccessKeyID != short.AccessKeyID {
		t.Error("credentials inside a longer session should be reused")
	}
	shorter := e.get(t, awscreds.Request{Role: "analyst", Principal: user("carol"), SessionExpiry: now.Add(20 * time.Minute)})
	if shorter.Expiration.After(now.Add(20 * time.Minute)) {
		t.Errorf("served credentials expiring %v beyond the session end", shorter.Expiration)
	}
}

func TestConcurrentRequestsMakeOneSTSCall(t *testing.T) {
	e := newEnv(t, nil)
	req := awscreds.Request{Role: "analyst", Principal: user("alice")}
	var wg sync.WaitGroup
	start := make(chan struct{})
	keys := make([]string, 20)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			creds, err := e.minter.Credentials(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = creds.AccessKeyID
		}()
	}
	close(start)
	wg.Wait()
	if n := e.sts.Calls("AssumeRole"); n != 1 {
		t.Fatalf("STS calls = %d, want 1", n)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("requests got different credentials: %q vs %q", k, keys[0])
		}
	}
}

func TestUsersNeverShareCredentials(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := user("alice"), user("bob")
	// A look-alike: same email, groups and subject as alice from another
	// issuer, so every template renders identically; only the id differs.
	twin := alice
	twin.ID = "https://other-idp.example.com#alice"

	principals := map[string]awscreds.Request{
		"alice": {Role: "analyst", Principal: alice},
		"bob":   {Role: "analyst", Principal: bob},
		"twin":  {Role: "analyst", Principal: twin},
	}
	names := []string{"alice", "bob", "twin"}
	got := make([]struct{ who, akid string }, 30)
	var wg sync.WaitGroup
	for i := range got {
		who := names[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds, err := e.minter.Credentials(context.Background(), principals[who])
			if err != nil {
				t.Error(err)
				return
			}
			got[i].who, got[i].akid = who, creds.AccessKeyID
		}()
	}
	wg.Wait()
	owner := map[string]string{}
	byUser := map[string]string{}
	for _, g := range got {
		if o, ok := owner[g.akid]; ok && o != g.who {
			t.Fatalf("access key %s handed to %s and %s", g.akid, o, g.who)
		}
		owner[g.akid] = g.who
		if k, ok := byUser[g.who]; ok && k != g.akid {
			t.Errorf("%s got two different keys without expiry", g.who)
		}
		byUser[g.who] = g.akid
	}
	if len(owner) != 3 || e.sts.Calls("AssumeRole") != 3 {
		t.Fatalf("distinct keys = %d, STS calls = %d; want 3 and 3", len(owner), e.sts.Calls("AssumeRole"))
	}
	if _, _, ok := e.sts.SecretFor(byUser["bob"]); !ok {
		t.Error("double does not know bob's key")
	}
}
