package awscreds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// unavailableCodes are STS error codes that mean "try again later" rather
// than "this request is wrong".
var unavailableCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "InternalFailure": true, "InternalError": true,
	"ServiceUnavailable": true, "IDPCommunicationError": true,
}

// mint renders the role's session attributes and makes one STS call (with
// the SDK retryer's jittered backoff inside it).
func (m *Minter) mint(ctx context.Context, r *role, req Request, duration time.Duration) (Credentials, error) {
	data := templateData{
		Email: req.Principal.Email, Sub: req.Principal.Subject, Groups: strings.Join(req.Principal.Groups, ":"),
		DeviceID: req.DeviceID, RiskLevel: req.RiskLevel, Route: req.Route,
	}
	if err := r.checkInputs(req.Principal, data); err != nil {
		m.cfg.Logger.Warn("awscreds: mint refused", "role", r.cfg.Name, "principal", req.Principal.ID, "reason", err)
		return Credentials{}, err
	}
	var policy *string
	if r.policy != nil {
		rendered, err := renderPolicy(r.policy, data)
		if err != nil {
			return Credentials{}, fmt.Errorf("awscreds: role %q: session policy %w", r.cfg.Name, err)
		}
		policy = aws.String(rendered)
	}
	seconds := aws.Int32(int32(duration / time.Second))
	sessionName := roleSessionName(req.Principal)
	start := time.Now()
	var creds Credentials
	var err error
	switch r.cfg.Mode {
	case ModeWebIdentity:
		creds, err = m.assumeRoleWithWebIdentity(ctx, r, req, sessionName, seconds, policy)
	default:
		creds, err = m.assumeRole(ctx, r, req, data, sessionName, seconds, policy)
	}
	if m.cfg.OnMint != nil {
		m.cfg.OnMint(r.cfg.Name, time.Since(start), err)
	}
	if err != nil {
		return Credentials{}, err
	}
	m.cfg.Logger.Info("awscreds: minted credentials", "role", r.cfg.Name, "principal", req.Principal.ID,
		"access_key_id", creds.AccessKeyID, "source_identity", creds.SourceIdentity,
		"assumed_role_arn", creds.AssumedRoleARN, "expiration", creds.Expiration)
	return creds, nil
}

func (m *Minter) assumeRole(ctx context.Context, r *role, req Request, data templateData, sessionName string, seconds *int32, policy *string) (Credentials, error) {
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(r.cfg.RoleARN),
		RoleSessionName: aws.String(sessionName),
		DurationSeconds: seconds,
		Policy:          policy,
		SourceIdentity:  aws.String(SourceIdentity(req.Principal)),
	}
	if r.cfg.ExternalID != "" {
		in.ExternalId = aws.String(r.cfg.ExternalID)
	}
	for _, key := range r.keys {
		value, err := renderTag(r.tags[key], data)
		if err != nil {
			return Credentials{}, fmt.Errorf("awscreds: role %q: session tag %q: %w", r.cfg.Name, key, err)
		}
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(key), Value: aws.String(value)})
	}
	in.TransitiveTagKeys = r.cfg.TransitiveTagKeys
	out, err := m.client.AssumeRole(ctx, in)
	if err != nil {
		return Credentials{}, fmt.Errorf("awscreds: AssumeRole %s: %w", r.cfg.RoleARN, err)
	}
	return convert(out.Credentials, out.AssumedRoleUser, out.SourceIdentity)
}

func (m *Minter) assumeRoleWithWebIdentity(ctx context.Context, r *role, req Request, sessionName string, seconds *int32, policy *string) (Credentials, error) {
	if req.WebIdentityToken == "" {
		return Credentials{}, fmt.Errorf("awscreds: role %q: web_identity needs the user's ID token", r.cfg.Name)
	}
	out, err := m.client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(r.cfg.RoleARN),
		RoleSessionName:  aws.String(sessionName),
		WebIdentityToken: aws.String(req.WebIdentityToken),
		DurationSeconds:  seconds,
		Policy:           policy,
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("awscreds: AssumeRoleWithWebIdentity %s: %w", r.cfg.RoleARN, err)
	}
	return convert(out.Credentials, out.AssumedRoleUser, out.SourceIdentity)
}

func convert(c *types.Credentials, user *types.AssumedRoleUser, source *string) (Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return Credentials{}, errors.New("awscreds: STS response without complete credentials")
	}
	out := Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      *c.Expiration,
		SourceIdentity:  aws.ToString(source),
	}
	if user != nil {
		out.AssumedRoleARN = aws.ToString(user.Arn)
	}
	return out, nil
}

// isUnavailable reports whether err means STS could not answer (throttling,
// server errors, network failures, timeouts) as opposed to refusing. The
// SDK nests its errors (an OperationError around a status-0 ResponseError
// around a RequestSendError around the net.OpError), so every test looks
// through the whole chain rather than stopping at the first match.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && unavailableCodes[apiErr.ErrorCode()] {
		return true
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		if s := respErr.HTTPStatusCode(); s >= 500 || s == http.StatusTooManyRequests {
			return true
		}
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	return errors.As(err, &sendErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

// STSErrorCode returns the STS error code in err ("Throttling",
// "AccessDenied", ...), "unavailable" for network failures and timeouts,
// "other" for anything else, or "" for nil. It is a bounded label for error
// metrics.
func STSErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	if isUnavailable(err) {
		return "unavailable"
	}
	return "other"
}
