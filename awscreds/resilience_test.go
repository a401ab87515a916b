package awscreds_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/awscreds"
)

func TestThrottlingThenRecovery(t *testing.T) {
	var mints []error
	e := newEnv(t, func(c *awscreds.Config) {
		c.OnMint = func(_ string, _ time.Duration, err error) { mints = append(mints, err) }
	})
	e.sts.ThrottleNext(2)
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	if creds.AccessKeyID == "" {
		t.Fatal("no credentials after retries")
	}
	if n := e.sts.Calls("AssumeRole"); n != 3 {
		t.Errorf("STS calls = %d, want 3 (2 throttled + 1 success)", n)
	}
	if len(mints) != 1 || mints[0] != nil {
		t.Errorf("OnMint calls = %v, want one success", mints)
	}
}

func TestServerErrorsThenRecovery(t *testing.T) {
	e := newEnv(t, nil)
	e.sts.FailNext(3)
	e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	if n := e.sts.Calls("AssumeRole"); n != 4 {
		t.Errorf("STS calls = %d, want 4", n)
	}
}

func TestPersistentThrottlingServesCacheUntilNearExpiry(t *testing.T) {
	for _, outage := range []struct {
		name string
		arm  func(e *env)
		code string
	}{
		{"throttling", func(e *env) { e.sts.ThrottleNext(1 << 30) }, "Throttling"},
		{"internal failure", func(e *env) { e.sts.FailNext(1 << 30) }, "InternalFailure"},
	} {
		t.Run(outage.name, func(t *testing.T) {
			e := newEnv(t, nil)
			req := awscreds.Request{Role: "analyst", Principal: user("alice")}
			first := e.get(t, req)
			outage.arm(e)

			e.clock.Advance(56 * time.Minute) // past the refresh point, 4m left
			stale := e.get(t, req)
			if stale.AccessKeyID != first.AccessKeyID {
				t.Fatal("did not serve cached credentials during the outage")
			}
			calls := e.sts.Calls("AssumeRole")
			if calls != 1+e.cfg.RetryMaxAttempts {
				t.Errorf("STS calls = %d, want %d (one mint with retries)", calls, 1+e.cfg.RetryMaxAttempts)
			}
			e.get(t, req) // inside the failure back-off: no new attempt
			if e.sts.Calls("AssumeRole") != calls {
				t.Error("retried STS inside the failure back-off")
			}

			e.clock.Advance(3*time.Minute + 30*time.Second) // 30s left: too close
			_, err := e.minter.Credentials(context.Background(), req)
			if !errors.Is(err, awscreds.ErrSTSUnavailable) {
				t.Fatalf("err = %v, want ErrSTSUnavailable", err)
			}
			if got := awscreds.STSErrorCode(err); got != outage.code {
				t.Errorf("STSErrorCode = %q, want %q", got, outage.code)
			}
			// A user with nothing cached fails closed at once.
			_, err = e.minter.Credentials(context.Background(), awscreds.Request{Role: "analyst", Principal: user("bob")})
			if !errors.Is(err, awscreds.ErrSTSUnavailable) {
				t.Fatalf("uncached err = %v, want ErrSTSUnavailable", err)
			}
		})
	}
}

func TestRiskCaps(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	alice := user("alice")
	low := e.get(t, awscreds.Request{Role: "analyst", Principal: alice, RiskLevel: "low"})

	medium := e.get(t, awscreds.Request{Role: "analyst", Principal: alice, RiskLevel: "medium"})
	if medium.AccessKeyID == low.AccessKeyID {
		t.Fatal("medium risk was served the low-risk one-hour credentials")
	}
	if !medium.Expiration.Equal(now.Add(15 * time.Minute)) {
		t.Errorf("medium-risk Expiration = %v, want now+15m", medium.Expiration)
	}
	if got := e.sts.LastRequest().Params.Get("DurationSeconds"); got != "900" {
		t.Errorf("DurationSeconds = %s, want 900", got)
	}

	calls := e.sts.Calls("AssumeRole")
	for _, level := range []string{"high", "severe"} {
		_, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "analyst", Principal: alice, RiskLevel: level})
		if !errors.Is(err, awscreds.ErrRiskTooHigh) {
			t.Errorf("risk %s: err = %v, want ErrRiskTooHigh", level, err)
		}
	}
	if e.sts.Calls("AssumeRole") != calls {
		t.Error("STS was called at high risk")
	}
}

func TestRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "nope", Principal: user("alice")}); !errors.Is(err, awscreds.ErrUnknownRole) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := e.minter.Credentials(context.Background(), awscreds.Request{Role: "analyst"}); err == nil {
		t.Error("anonymous principal got credentials")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.minter.Credentials(ctx, awscreds.Request{Role: "analyst", Principal: user("alice")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// Issue 14.3: with STS unreachable (connection refused, or accepting and
// never answering) the SDK error nests a status-0 ResponseError around the
// send failure; the minter took it for a refusal, so cached credentials
// were not served and the metric label was "other".
func TestSTSUnreachableServesCacheUntilNearExpiry(t *testing.T) {
	for _, outage := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"connection refused", closedPort},
		{"hung", hungListener},
	} {
		t.Run(outage.name, func(t *testing.T) {
			var target atomic.Value
			var tr *http.Transport
			e := newEnv(t, func(c *awscreds.Config) {
				tr = &http.Transport{
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						if to, _ := target.Load().(string); to != "" {
							addr = to
						}
						return (&net.Dialer{}).DialContext(ctx, network, addr)
					},
					ResponseHeaderTimeout: 300 * time.Millisecond,
				}
				c.HTTPClient = &http.Client{Transport: tr}
			})
			req := awscreds.Request{Role: "analyst", Principal: user("alice")}
			first := e.get(t, req)
			target.Store(outage.addr(t))
			tr.CloseIdleConnections()

			e.clock.Advance(56 * time.Minute) // past the refresh point, 4m left
			if stale := e.get(t, req); stale.AccessKeyID != first.AccessKeyID {
				t.Fatal("did not serve cached credentials while STS was unreachable")
			}
			e.clock.Advance(3*time.Minute + 30*time.Second) // 30s left: too close
			_, err := e.minter.Credentials(context.Background(), req)
			if !errors.Is(err, awscreds.ErrSTSUnavailable) {
				t.Fatalf("err = %v, want ErrSTSUnavailable", err)
			}
			if got := awscreds.STSErrorCode(err); got != "unavailable" {
				t.Errorf("STSErrorCode = %q, want unavailable (err %v)", got, err)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hungListener accepts connections and never answers.
func hungListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}
