package awscreds_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"ztproxy/awscreds"
	"ztproxy/identity"
)

// Issue 14.4 (high): session-policy templates JSON-escaped their inputs but
// let IAM wildcards through, so a user whose email is "*@example.com" got
// arn:aws:s3:::reports/*@example.com/*, every user's folder; unverified
// emails were used too, and tag values were rewritten ("a*b" → "a_b")
// into another user's value.
func TestTemplateInputsRefused(t *testing.T) {
	e := newEnv(t, func(c *awscreds.Config) {
		c.Roles = append(c.Roles,
			awscreds.RoleConfig{
				Name: "reports", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour, ExternalID: "ext-123",
				SessionPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/{{.Email}}/*"}]}`,
			},
			awscreds.RoleConfig{
				Name: "by-device", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour, ExternalID: "ext-123",
				SessionTags: map[string]string{"device": "{{.DeviceID}}", "sub": "{{.Sub}}"},
			},
			awscreds.RoleConfig{Name: "plain", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour, ExternalID: "ext-123"},
		)
	})
	person := func(email string, verified bool) identity.Principal {
		p := user("u" + strings.NewReplacer("@", "", "*", "", "/", "").Replace(email))
		p.Email, p.EmailVerified = email, verified
		return p
	}
	for _, tc := range []struct {
		name    string
		req     awscreds.Request
		wantErr error
	}{
		{"wildcard email", awscreds.Request{Role: "reports", Principal: person("*@example.com", true)}, awscreds.ErrTemplateInput},
		{"question mark", awscreds.Request{Role: "reports", Principal: person("a?c@example.com", true)}, awscreds.ErrTemplateInput},
		{"policy variable", awscreds.Request{Role: "reports", Principal: person("${aws:username}@example.com", true)}, awscreds.ErrTemplateInput},
		{"sub-folder of another user", awscreds.Request{Role: "reports", Principal: person("alice@example.com/x", true)}, awscreds.ErrTemplateInput},
		{"unverified email", awscreds.Request{Role: "reports", Principal: person("alice@example.com", false)}, awscreds.ErrEmailUnverified},
		{"unverified email in a tag", awscreds.Request{Role: "analyst", Principal: person("alice@example.com", false)}, awscreds.ErrEmailUnverified},
		{"tag value outside STS's set", awscreds.Request{Role: "by-device", Principal: func() identity.Principal {
			p := user("carol")
			p.Subject = "auth0|carol"
			return p
		}(), DeviceID: "laptop-1"}, awscreds.ErrTemplateInput},
		{"control character", awscreds.Request{Role: "by-device", Principal: user("dave"), DeviceID: "lap\ntop"}, awscreds.ErrTemplateInput},
		{"verified plain email", awscreds.Request{Role: "reports", Principal: person("jane@example.com", true)}, nil},
		// Separators are fine in a tag when the value is not an email and
		// no policy template reads it.
		{"device id with separators in a tag", awscreds.Request{Role: "by-device", Principal: user("erin"), DeviceID: "spiffe://corp/device/1"}, nil},
		// A role that reads no email does not care whether it is verified.
		{"unverified email, role reads none", awscreds.Request{Role: "plain", Principal: person("*@example.com", false)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := e.sts.Calls("AssumeRole")
			_, err := e.minter.Credentials(context.Background(), tc.req)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if e.sts.Calls("AssumeRole") != calls {
				t.Error("STS was called for a refused identity")
			}
		})
	}
	if got := e.sts.LastRequest().Params.Get("Policy"); strings.Contains(got, "*@") {
		t.Errorf("a wildcard reached STS: %s", got)
	}
}

// FuzzTemplateInputs: whatever the email, a rendered policy either grants
// exactly the user's own prefix or the mint is refused.
func FuzzTemplateInputs(f *testing.F) {
	for _, s := range []string{"jane@example.com", "*@example.com", "a/b@x", "${aws:username}", "é@x", `x"}]`, "a\x00b"} {
		f.Add(s)
	}
	e := newEnv(f, func(c *awscreds.Config) {
		c.Roles = []awscreds.RoleConfig{{
			Name: "reports", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour, ExternalID: "ext-123",
			SessionPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/{{.Email}}/*"}]}`,
		}}
	})
	n := 0
	f.Fuzz(func(t *testing.T, email string) {
		n++
		p := user("fuzz" + strings.Repeat("x", n%7))
		p.ID += "-" + time.Now().Format("150405.000000000") // a fresh cache key
		p.Email = email
		_, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "reports", Principal: p})
		if err != nil {
			return
		}
		for _, c := range "*?${}/:" {
			if strings.ContainsRune(email, c) {
				t.Fatalf("minted for %q, which holds %q", email, c)
			}
		}
	})
}
