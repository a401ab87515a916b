package awscreds_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"ztproxy/awscreds"
)

func manyTags(n int) map[string]string {
	tags := map[string]string{}
	for i := range n {
		tags[fmt.Sprintf("k%d", i)] = "v"
	}
	return tags
}

func stsTags(n, keyLen, valueLen int) []types.Tag {
	var tags []types.Tag
	for i := range n {
		key := fmt.Sprintf("k%d", i) + strings.Repeat("k", max(0, keyLen-len(fmt.Sprint(i))-1))
		tags = append(tags, types.Tag{Key: aws.String(key), Value: aws.String(strings.Repeat("v", valueLen))})
	}
	return tags
}

// TestLimitsCaughtByValidateAndByTheDouble shows each STS limit twice: a
// configuration that would break it fails Validate with its path, and the
// equivalent request sent anyway is refused by the STS double.
func TestLimitsCaughtByValidateAndByTheDouble(t *testing.T) {
	e := newEnv(t, nil)
	client := sts.New(sts.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.sts.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(proxyKeyID, proxySecret, ""),
	})
	longPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("a", 2048) + `"}]}`
	for _, tc := range []struct {
		name     string
		role     func(*awscreds.RoleConfig)
		wantPath string
		input    func(*sts.AssumeRoleInput)
		wantCode string
	}{
		{"duration too short", func(r *awscreds.RoleConfig) { r.Duration = 899 * time.Second }, "aws.roles[0].duration",
			func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError"},
		{"duration too long", func(r *awscreds.RoleConfig) { r.Duration = 12*time.Hour + time.Second }, "aws.roles[0].duration",
			func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }, "ValidationError"},
		{"too many tags", func(r *awscreds.RoleConfig) { r.SessionTags = manyTags(51); r.TransitiveTagKeys = nil }, "aws.roles[0].session_tags",
			func(in *sts.AssumeRoleInput) { in.Tags = stsTags(51, 2, 1) }, "ValidationError"},
		{"tag key too long", func(r *awscreds.RoleConfig) {
			r.SessionTags = map[string]string{strings.Repeat("k", 129): "v"}
			r.TransitiveTagKeys = nil
		},
			"aws.roles[0].session_tags." + strings.Repeat("k", 129), func(in *sts.AssumeRoleInput) { in.Tags = stsTags(1, 129, 1) }, "ValidationError"},
		{"tag value too long", func(r *awscreds.RoleConfig) {
			r.SessionTags = map[string]string{"team": strings.Repeat("v", 257)}
			r.TransitiveTagKeys = nil
		},
			"aws.roles[0].session_tags.team", func(in *sts.AssumeRoleInput) { in.Tags = stsTags(1, 4, 257) }, "ValidationError"},
		{"transitive key not a tag", func(r *awscreds.RoleConfig) { r.TransitiveTagKeys = []string{"team"} }, "aws.roles[0].transitive_tag_keys[0]",
			func(in *sts.AssumeRoleInput) { in.Tags = stsTags(1, 4, 1); in.TransitiveTagKeys = []string{"team"} }, "InvalidParameterValue"},
		{"policy too long", func(r *awscreds.RoleConfig) { r.SessionPolicy = longPolicy }, "aws.roles[0].session_policy",
			func(in *sts.AssumeRoleInput) { in.Policy = aws.String(longPolicy) }, "ValidationError"},
		{"packed too large", func(r *awscreds.RoleConfig) {
			r.SessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("a", 1900) + `"}]}`
			r.SessionTags = map[string]string{}
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				r.SessionTags[k] = strings.Repeat("v", 250)
			}
			r.TransitiveTagKeys = nil
		}, "aws.roles[0].session_policy", func(in *sts.AssumeRoleInput) {
			in.Policy = aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("a", 1900) + `"}]}`)
			in.Tags = stsTags(5, 1, 250)
		}, "PackedPolicyTooLarge"},
		{"bad role ARN", func(r *awscreds.RoleConfig) { r.RoleARN = "arn:aws:iam::12345:role/analyst" }, "aws.roles[0].role_arn",
			func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::999999999999:role/analyst") }, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role := analystRole()
			tc.role(&role)
			cfg := awscreds.Config{Region: "us-east-1", Roles: []awscreds.RoleConfig{role}}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantPath+": ") {
				t.Errorf("Validate() = %v, want a problem at %s", err, tc.wantPath)
			}
			in := &sts.AssumeRoleInput{
				RoleArn: aws.String(analystARN), RoleSessionName: aws.String("alice-0123abcd"), ExternalId: aws.String("ext-123"),
			}
			tc.input(in)
			_, err = client.AssumeRole(context.Background(), in)
			if got := awscreds.STSErrorCode(err); got != tc.wantCode {
				t.Errorf("double answered %q (%v), want %s", got, err, tc.wantCode)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := awscreds.Config{
		STSEndpoint: "not a url",
		Roles: []awscreds.RoleConfig{
			{Name: "a", RoleARN: analystARN, Mode: "assume", Duration: time.Minute},
			{Name: "a", RoleARN: webReaderARN, Mode: awscreds.ModeWebIdentity, SessionTags: map[string]string{"x": "y"}, ExternalID: "e1"},
			{Name: "c", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, SessionTags: map[string]string{
				"Team": "{{.Email}}", "team": "x", "aws:x": "y", "bad key!": "v", "prefixed": "user-{{.Email}}", "unknown": "{{.Password}}", "broken": "{{.Email",
			}, SessionPolicy: `{"Version": "{{.Email}}"`},
		},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"aws.region: required",
		"aws.sts_endpoint:",
		"aws.roles[0].mode:",
		"aws.roles[0].duration:",
		"aws.roles[1].name: \"a\" is already used by roles[0]",
		"aws.roles[1].session_tags: not supported with mode web_identity",
		"aws.roles[1].external_id: not supported",
		"aws.roles[2].session_tags.team: duplicates key",
		"aws.roles[2].session_tags.aws:x: key must not start with \"aws:\"",
		"aws.roles[2].session_tags.bad key!: key must match",
		"aws.roles[2].session_tags.prefixed: value can reach 259 characters",
		"aws.roles[2].session_tags.unknown: rendering:",
		"aws.roles[2].session_tags.broken: invalid template",
		"aws.roles[2].session_policy: not valid JSON",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	good := awscreds.Config{Region: "us-east-1", Roles: []awscreds.RoleConfig{analystRole(), webRole()}}
	if err := good.Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestNewRequiresProxyCredentialsForAssumeRole(t *testing.T) {
	if _, err := awscreds.New(awscreds.Config{Region: "us-east-1", Roles: []awscreds.RoleConfig{analystRole()}}); err == nil {
		t.Error("assume_role without proxy credentials accepted")
	}
	if _, err := awscreds.New(awscreds.Config{Region: "us-east-1", Roles: []awscreds.RoleConfig{webRole()}}); err != nil {
		t.Errorf("web_identity needs no proxy credentials: %v", err)
	}
}

func TestSessionPolicyEscapesUserData(t *testing.T) {
	e := newEnv(t, func(c *awscreds.Config) {
		c.Roles = append(c.Roles, awscreds.RoleConfig{
			Name: "escaper", RoleARN: analystARN, Mode: awscreds.ModeAssumeRole, Duration: time.Hour, ExternalID: "ext-123",
			SessionPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::data/{{.Sub}}"]}]}`,
		})
	})
	evil := user("mallory")
	evil.Subject = `x","y`
	e.get(t, awscreds.Request{Role: "escaper", Principal: evil})
	policy := e.sts.LastRequest().Params.Get("Policy")
	if !strings.Contains(policy, `["arn:aws:s3:::data/x\",\"y"]`) {
		t.Errorf("user data changed the policy's structure: %s", policy)
	}
}
