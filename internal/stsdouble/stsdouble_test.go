package stsdouble_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"ztproxy/internal/stsdouble"
)

const (
	keyID   = "AKIAEXAMPLE000000001"
	secret  = "secret-EXAMPLE"
	roleARN = "arn:aws:iam::123456789012:role/analyst"
)

func start(t *testing.T, now func() time.Time) *stsdouble.Server {
	return stsdouble.Start(t, stsdouble.Config{
		Region:     "us-east-1",
		AccessKeys: map[string]string{keyID: secret},
		Roles:      []stsdouble.Role{{ARN: roleARN, MaxSessionDuration: 2 * time.Hour, ExternalID: "ext-1"}},
		Now:        now,
	})
}

func client(s *stsdouble.Server, akid, secret, token string) *sts.Client {
	return sts.New(sts.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token),
	})
}

func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestErrorEnvelopeShape(t *testing.T) {
	s := start(t, nil)
	post := func(form url.Values) (int, string) {
		resp, err := http.PostForm(s.URL, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, body := post(url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}})
	for _, want := range []string{
		`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`,
		"<Error>", "<Type>Sender</Type>", "<Code>MissingAuthenticationToken</Code>",
		"<Message>Request is missing Authentication Token</Message>", "</Error>", "<RequestId>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in %d %s", want, status, body)
		}
	}
	if status != http.StatusForbidden {
		t.Errorf("status %d, want 403", status)
	}
	s.FailNext(1)
	if status, body = post(url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}); status != 500 || !strings.Contains(body, "<Code>InternalFailure</Code>") || !strings.Contains(body, "<Type>Receiver</Type>") {
		t.Errorf("injected failure: %d %s", status, body)
	}
	s.ThrottleNext(1)
	if status, body = post(url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}); status != 400 || !strings.Contains(body, "<Code>Throttling</Code>") || !strings.Contains(body, "<Message>Rate exceeded</Message>") {
		t.Errorf("throttle: %d %s", status, body)
	}
	if status, body = post(url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2010-01-01"}}); status != 400 || !strings.Contains(body, "InvalidAction") {
		t.Errorf("bad version: %d %s", status, body)
	}
	if s.Calls("GetCallerIdentity") != 3 || s.LastRequest().Params.Get("Version") != "2010-01-01" {
		t.Errorf("calls = %d, last = %v", s.Calls("GetCallerIdentity"), s.LastRequest())
	}
}

func TestAssumeRoleRules(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := start(t, func() time.Time { return now })
	c := client(s, keyID, secret, "")
	base := func() *sts.AssumeRoleInput {
		return &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("alice-1"), ExternalId: aws.String("ext-1")}
	}
	for _, tc := range []struct {
		name   string
		modify func(*sts.AssumeRoleInput)
		code   string
	}{
		{"ok", func(*sts.AssumeRoleInput) {}, ""},
		{"duration under 900", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError"},
		{"duration over role max", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(7201) }, "ValidationError"},
		{"session name charset", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("alice smith") }, "ValidationError"},
		{"session name too short", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a") }, "ValidationError"},
		{"session name too long", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 65)) }, "ValidationError"},
		{"source identity aws:", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("aws:alice") }, "ValidationError"},
		{"source identity charset", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("alice smith") }, "ValidationError"},
		{"duplicate tag keys", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("Team"), Value: aws.String("a")}, {Key: aws.String("team"), Value: aws.String("b")}}
		}, "InvalidParameterValue"},
		{"malformed policy", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"Version":`) }, "MalformedPolicyDocument"},
		{"missing external id", func(in *sts.AssumeRoleInput) { in.ExternalId = nil }, "AccessDenied"},
		{"wrong external id", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("ext-2") }, "AccessDenied"},
		{"unknown role", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::123456789012:role/other") }, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.modify(in)
			out, err := c.AssumeRole(context.Background(), in)
			if got := code(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
			if err != nil {
				return
			}
			if !out.Credentials.Expiration.Equal(now.Add(time.Hour)) {
				t.Errorf("Expiration = %v, want now+1h", out.Credentials.Expiration)
			}
			if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::123456789012:assumed-role/analyst/alice-1" {
				t.Errorf("Arn = %q", got)
			}
			sec, tok, ok := s.SecretFor(aws.ToString(out.Credentials.AccessKeyId))
			if !ok || sec != aws.ToString(out.Credentials.SecretAccessKey) || tok != aws.ToString(out.Credentials.SessionToken) {
				t.Error("SecretFor does not return the issued secret")
			}
		})
	}
}

func TestRoleChainingAndExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := start(t, func() time.Time { return now })
	out, err := client(s, keyID, secret, "").AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("first"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(7200),
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	chained := client(s, *cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken)
	_, err = chained.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("second"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(3601),
	})
	if code(err) != "ValidationError" {
		t.Errorf("role chaining beyond 1h: %v", err)
	}
	if _, err := client(s, *cr.AccessKeyId, *cr.SecretAccessKey, "wrong-token").GetCallerIdentity(context.Background(), nil); code(err) != "InvalidClientTokenId" {
		t.Errorf("wrong session token: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := chained.GetCallerIdentity(context.Background(), nil); code(err) != "ExpiredToken" {
		t.Errorf("expired session: %v", err)
	}
}

func TestSignatureIsVerified(t *testing.T) {
	s := start(t, nil)
	if _, err := client(s, keyID, "wrong", "").GetCallerIdentity(context.Background(), nil); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
	other := sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")})
	if _, err := other.GetCallerIdentity(context.Background(), nil); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong region: %v", err)
	}
	who, err := client(s, keyID, secret, "").GetCallerIdentity(context.Background(), nil)
	if err != nil || aws.ToString(who.Account) != stsdouble.DefaultAccountID {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
}
