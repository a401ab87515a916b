package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DynamoConfig configures the DynamoDB store.
type DynamoConfig struct {
	// Region is the AWS region; taken from the environment when empty, and
	// us-east-1 for a loopback Endpoint.
	Region string
	// TablePrefix is prepended to every table name, e.g. "ztproxy-".
	TablePrefix string
	// Endpoint overrides the DynamoDB endpoint, for local servers such as
	// dynalite. When it is a loopback URL and the standard credential chain
	// finds nothing, static dummy credentials are used (local servers do not
	// check signatures) and the EC2 metadata service is not consulted.
	Endpoint string
	// Client replaces the client NewDynamo would build; Region, Endpoint,
	// MaxAttempts, MaxBackoff and HTTPTimeout are then ignored.
	Client *dynamodb.Client
	// Now is the clock used for expiry; time.Now when nil.
	Now func() time.Time
	// Sealer encrypts refresh tokens at rest. It MUST be set in production.
	Sealer Sealer
	// MaxAttempts is the SDK standard retryer's attempt limit (default 5);
	// MaxBackoff caps its jittered exponential backoff (default 5 s).
	MaxAttempts int
	MaxBackoff  time.Duration
	// HTTPTimeout bounds one HTTP attempt (default 5 s).
	HTTPTimeout time.Duration
	// MaxMapEntries bounds each profile map; DefaultMaxMapEntries when 0.
	MaxMapEntries int
	// OnCall, when set, is called after every DynamoDB API call (retries
	// included in one call) with op "<table kind>.<API>", e.g.
	// "profiles.UpdateItem", so that callers can count calls, latency and
	// errors with bounded label cardinality.
	OnCall func(op string, d time.Duration, err error)
	// StartSpan, when set, starts a trace span around every DynamoDB call
	// (op as for OnCall) and returns the call's context and the function
	// that ends the span with the call's error (tracing.Tracer.ClientSpans).
	StartSpan func(ctx context.Context, op string) (context.Context, func(error))
}

// Dynamo is the DynamoDB store shared by any number of replicas.
type Dynamo struct {
	client *dynamodb.Client
	cfg    DynamoConfig
	tables tableNames
}

var _ Store = (*Dynamo)(nil)

type tableNames struct{ sessions, profiles, flags, credentials, devices, changes string }

func namesFor(prefix string) tableNames {
	return tableNames{prefix + "sessions", prefix + "profiles", prefix + "flags", prefix + "credentials", prefix + "devices",
		prefix + "changes"}
}

// NewDynamo builds the store. Without cfg.Client it loads the AWS
// configuration with the standard credential chain (environment, shared
// files, web identity, container and instance roles). It does not create
// tables; see CreateTables.
func NewDynamo(ctx context.Context, cfg DynamoConfig) (*Dynamo, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 5 * time.Second
	}
	if cfg.MaxMapEntries <= 0 {
		cfg.MaxMapEntries = DefaultMaxMapEntries
	}
	client := cfg.Client
	if client == nil {
		var err error
		if client, err = buildClient(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return &Dynamo{client: client, cfg: cfg, tables: namesFor(cfg.TablePrefix)}, nil
}

func buildClient(ctx context.Context, cfg DynamoConfig) (*dynamodb.Client, error) {
	local := false
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" {
			return nil, invalid("dynamodb endpoint %q is not a URL", cfg.Endpoint)
		}
		local = isLoopback(u.Hostname())
	}
	region := cfg.Region
	if region == "" && local {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(cfg.HTTPTimeout)),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
				// The SDK's client-side retry quota (500 tokens, 5–14 per
				// retry) runs dry after a few dozen failed calls and then
				// fails every call on its first error ("retry quota
				// exceeded"): during an outage calls got one attempt, not
				// the documented MaxAttempts (issue 14.5). Callers bound
				// their own time with contexts instead.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	if local {
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, invalid("dynamodb region is not set (config or AWS_REGION)")
	}
	if local && !hasCredentials(ctx, awsCfg) {
		awsCfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

func hasCredentials(ctx context.Context, cfg aws.Config) bool {
	if cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(ctx)
	return err == nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close releases nothing today; it exists to satisfy Store.
func (d *Dynamo) Close() error { return nil }

// observe reports one API call to the OnCall hook. Latency is wall time,
// independent of the injected clock.
func (d *Dynamo) observe(op string, start time.Time, err error) {
	if d.cfg.OnCall != nil {
		d.cfg.OnCall(op, time.Since(start), err)
	}
}

// span starts the trace span of one call (StartSpan); without tracing it
// returns ctx and a no-op.
func (d *Dynamo) span(ctx context.Context, op string) (context.Context, func(error)) {
	if d.cfg.StartSpan == nil {
		return ctx, endNothing
	}
	return d.cfg.StartSpan(ctx, op)
}

func endNothing(error) {}

func (d *Dynamo) getItem(ctx context.Context, kind string, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
	op := kind + ".GetItem"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.GetItem(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

func (d *Dynamo) putItem(ctx context.Context, kind string, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
	op := kind + ".PutItem"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.PutItem(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

func (d *Dynamo) updateItem(ctx context.Context, kind string, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	op := kind + ".UpdateItem"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.UpdateItem(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

func (d *Dynamo) deleteItem(ctx context.Context, kind string, in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
	op := kind + ".DeleteItem"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.DeleteItem(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

func (d *Dynamo) scan(ctx context.Context, kind string, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
	op := kind + ".Scan"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.Scan(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

func (d *Dynamo) query(ctx context.Context, kind string, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	op := kind + ".Query"
	ctx, end := d.span(ctx, op)
	start := time.Now()
	out, err := d.client.Query(ctx, in)
	end(err)
	d.observe(op, start, err)
	return out, err
}

// wrapDynamo adds the store prefix and the operation to an SDK error.
func wrapDynamo(what string, err error) error {
	return fmt.Errorf("store: dynamodb %s: %w", what, err)
}

// isConditionFailed reports a failed ConditionExpression.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// throttleCodes are the error codes DynamoDB and the SDK use for throttling.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"Throttling":                             true,
	"TooManyRequestsException":               true,
}

// IsThrottle reports whether err (possibly wrapped, possibly after the
// retryer gave up) is DynamoDB throttling, so callers can tell "slow down"
// from "unavailable".
func IsThrottle(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && throttleCodes[apiErr.ErrorCode()] {
		return true
	}
	var te interface{ Throttle() bool }
	return errors.As(err, &te) && te.Throttle()
}
