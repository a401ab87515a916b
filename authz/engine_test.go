package authz

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// fixedNow is the clock of test engines and the time of test requests.
var fixedNow = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC) // a Monday

func newEngine(t *testing.T, files ...PolicyFile) *Engine {
	t.Helper()
	e, err := New(Config{Policies: files, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func file(name, text string) PolicyFile { return PolicyFile{Name: name, Text: []byte(text)} }

// alice is a user in group eng with password-only authentication.
func alice() identity.RequestContext {
	return identity.RequestContext{
		Route:  "api",
		Method: "GET",
		Host:   "api.example.com",
		Path:   "/v1/things",
		Principal: identity.Principal{
			Kind:     identity.KindUser,
			ID:       "https://idp.example.com#alice",
			Email:    "alice@example.com",
			Groups:   []string{"eng"},
			AuthKind: identity.AuthBrowser,
			AMR:      []string{"pwd"},
			AuthTime: fixedNow.Add(-time.Hour),
		},
		ClientIP: netip.MustParseAddr("10.1.2.3"),
		Risk:     identity.NeutralRisk,
		Time:     fixedNow,
	}
}

const decidePolicies = `
@id("api-read-for-engineers")
permit (principal, action in [Action::"GET", Action::"HEAD"], resource == Route::"api")
when { principal in Group::"eng" };

@id("api-write-for-engineers")
permit (principal, action in [Action::"POST", Action::"DELETE"], resource == Route::"api")
when { principal in Group::"eng" };

@id("api-writes-need-mfa")
@step_up("mfa")
@reason("changes need a second factor")
forbid (principal, action in [Action::"POST", Action::"DELETE"], resource == Route::"api")
unless { context.auth.mfa };

@id("api-delete-needs-webauthn")
@step_up("webauthn")
forbid (principal, action == Action::"DELETE", resource == Route::"api")
unless { context.auth.amr.contains("hwk") };

@id("api-delete-needs-acr")
@step_up("acr:gold")
forbid (principal, action == Action::"DELETE", resource == Route::"api")
unless { context.auth.acr == "gold" };

@id("block-high-risk")
@reason("this sign-in looks too risky")
forbid (principal, action, resource)
when { context.risk.level == "high" };

@id("block-outside-office")
@step_up("mfa")
@reason("only from the office network")
forbid (principal, action, resource == Route::"api")
unless { context.network.client_ip.isInRange(ip("10.0.0.0/8")) };
`

func TestDecide(t *testing.T) {
	e := newEngine(t, file("api.cedar", decidePolicies))
	tests := []struct {
		name   string
		modify func(rc *identity.RequestContext)
		want   identity.Decision
	}{{
		name:   "allow by group",
		modify: func(*identity.RequestContext) {},
		want:   identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"api-read-for-engineers"}},
	}, {
		name:   "default deny without the group",
		modify: func(rc *identity.RequestContext) { rc.Principal.Groups = []string{"sales"} },
		want:   identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}},
	}, {
		name:   "default deny for another route",
		modify: func(rc *identity.RequestContext) { rc.Route = "billing" },
		want:   identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}},
	}, {
		name:   "default deny for anonymous",
		modify: func(rc *identity.RequestContext) { rc.Principal = identity.Anonymous },
		want:   identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}},
	}, {
		name:   "forbid overrides permit",
		modify: func(rc *identity.RequestContext) { rc.Risk = identity.Risk{Score: 90, Level: identity.RiskHigh} },
		want: identity.Decision{Effect: identity.Deny, PolicyIDs: []string{"block-high-risk"},
			Reasons: []string{"this sign-in looks too risky"}},
	}, {
		name:   "step-up when the only deciding forbid asks for it",
		modify: func(rc *identity.RequestContext) { rc.Method = "POST" },
		want: identity.Decision{Effect: identity.StepUp, PolicyIDs: []string{"api-writes-need-mfa"},
			StepUp: []string{"mfa"}, Reasons: []string{"changes need a second factor"}},
	}, {
		name: "step-up requirements are deduplicated and sorted",
		modify: func(rc *identity.RequestContext) {
			rc.Method = "DELETE"
			rc.ClientIP = netip.MustParseAddr("192.0.2.1")
		},
		want: identity.Decision{Effect: identity.StepUp,
			PolicyIDs: []string{"api-writes-need-mfa", "api-delete-needs-webauthn", "api-delete-needs-acr", "block-outside-office"},
			StepUp:    []string{"acr:gold", "mfa", "webauthn"},
			Reasons:   []string{"changes need a second factor", "only from the office network"}},
	}, {
		name: "deny when one deciding forbid lacks step_up",
		modify: func(rc *identity.RequestContext) {
			rc.Method = "POST"
			rc.Risk = identity.Risk{Score: 90, Level: identity.RiskHigh}
		},
		want: identity.Decision{Effect: identity.Deny, PolicyIDs: []string{"api-writes-need-mfa", "block-high-risk"},
			Reasons: []string{"changes need a second factor", "this sign-in looks too risky"}},
	}, {
		name: "allow after step-up",
		modify: func(rc *identity.RequestContext) {
			rc.Method = "POST"
			rc.Principal.AMR = []string{"pwd", "otp"}
		},
		want: identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"api-write-for-engineers"}},
	}, {
		name:   "IPv4-mapped client address matches IPv4 ranges",
		modify: func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("::ffff:10.9.9.9") },
		want:   identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"api-read-for-engineers"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := alice()
			tt.modify(&rc)
			got, err := e.Decide(&rc)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// Issue 12.4: a lower-case method was upper-cased for the action but not
// for context.http.method, so a forbid on context.http.method == "DELETE"
// did not fire. The engine now refuses to decide any other spelling.
func TestDecideRefusesNonCanonicalMethods(t *testing.T) {
	e := newEngine(t, file("api.cedar", decidePolicies))
	for _, m := range []string{"delete", "Delete", "GET ", "G\x00T", strings.Repeat("A", 33)} {
		rc := alice()
		rc.Method = m
		if d, err := e.Decide(&rc); err == nil {
			t.Errorf("method %q decided: %v", m, d)
		}
	}
	rc := alice()
	rc.Method = "PROPFIND"
	if _, err := e.Decide(&rc); err != nil {
		t.Errorf("extension method: %v", err)
	}
}

func TestDecideEvaluationErrorDenies(t *testing.T) {
	const permitAll = `@id("permit-all") permit (principal, action, resource);` + "\n"
	tests := []struct {
		name     string
		policy   string
		failedID string
	}{{
		name:     "string compared with <",
		policy:   `@id("bad-compare") forbid (principal, action, resource) when { context.http.path < "a" };`,
		failedID: "bad-compare",
	}, {
		name:     "missing record attribute",
		policy:   `@id("bad-claim") forbid (principal, action, resource) when { context.identity.claims.department == "x" };`,
		failedID: "bad-claim",
	}, {
		name:     "missing context key",
		policy:   `@id("bad-key") forbid (principal, action, resource) when { context.nope };`,
		failedID: "bad-key",
	}, {
		name:     "erroring permit",
		policy:   `@id("bad-permit") permit (principal, action, resource) when { context.risk.score + "1" == 2 };`,
		failedID: "bad-permit",
	}, {
		name:     "generated id names the policy",
		policy:   `forbid (principal, action, resource) when { principal.department == "x" };`,
		failedID: "errors.cedar:1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, file("errors.cedar", permitAll+tt.policy))
			rc := alice()
			got, err := e.Decide(&rc)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Effect != identity.Deny {
				t.Errorf("Effect = %v, want deny", got.Effect)
			}
			if diff := cmp.Diff([]string{tt.failedID}, got.PolicyIDs); diff != "" {
				t.Errorf("PolicyIDs (-want +got):\n%s", diff)
			}
			prefix := "policy " + tt.failedID + " failed to evaluate: "
			if len(got.Reasons) != 1 || !strings.HasPrefix(got.Reasons[0], prefix) {
				t.Errorf("Reasons = %q, want one starting with %q", got.Reasons, prefix)
			}
		})
	}
}

// everyKeyPolicy reads every documented context key and checks its default
// for a zero-value RequestContext evaluated at fixedNow. A missing key would
// make it fail to evaluate; a wrong default would make it not permit.
const everyKeyPolicy = `
@id("every-key")
permit (principal == Anonymous::"anonymous", action, resource == Route::"")
when {
  principal.email == "" && principal.email_verified == false && principal.groups == [] &&
  context.http.method == "" && context.http.host == "" &&
  context.http.path == "" && context.http.user_agent == "" &&
  context.network.client_ip == ip("0.0.0.0") && context.network.trusted_proxy_hops == 0 &&
  context.identity.issuer == "" && context.identity.sub == "" && context.identity.email == "" &&
  context.identity.username == "" && context.identity.scopes == [] &&
  context.identity.email_verified == false && context.identity.groups == [] && context.identity.claims == {} &&
  context.auth.kind == "none" && context.auth.amr == [] && context.auth.acr == "" &&
  context.auth.age_seconds == 2147483648 && context.auth.mfa == false &&
  context.device.present == false && context.device.id == "" && context.device.spiffe_id == "" &&
  context.device.fingerprint == "" && context.device.managed == false &&
  context.device.enrolled == false && context.device.owner == "" && context.device.owner_matches == false &&
  context.device.status == "" && context.device.posture_age_seconds == 2147483648 &&
  context.device.posture == {os: "", os_version: "", kernel: "", disk_encrypted: false, firewall: false, screen_lock: false, score: 0,
    unknown: ["os", "os_version", "kernel", "disk_encrypted", "firewall", "screen_lock", "score"]} &&
  context.risk.score == 0 && context.risk.level == "low" && context.risk.reasons == [] &&
  context.time.hour == 12 && context.time.weekday == "monday" && context.time.unix == 1704110400
};`

func TestEveryContextKeyPresent(t *testing.T) {
	e := newEngine(t, file("keys.cedar", everyKeyPolicy))
	got, err := e.Decide(&identity.RequestContext{})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	want := identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"every-key"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decide (-want +got):\n%s", diff)
	}
}

// Issue 21.1 and 21.2: Cognito access tokens carry username and scope but
// no email; policy can use both, and a scope is an exact set member, not a
// substring of the scope string.
func TestUsernameAndScopesInContext(t *testing.T) {
	e := newEngine(t, file("api.cedar", `
@id("reporting-reads")
permit (principal, action == Action::"GET", resource == Route::"api")
when { context.identity.scopes.contains("https://api.example.com/read") };

@id("ada-writes")
permit (principal, action == Action::"POST", resource == Route::"api")
when { context.identity.username == "ada" };`))
	tests := []struct {
		name         string
		method, user string
		scopes       []string
		want         identity.Effect
	}{
		{"scope present", "GET", "", []string{"openid", "https://api.example.com/read"}, identity.Allow},
		{"longer scope is not the scope", "GET", "", []string{"https://api.example.com/readwrite"}, identity.Deny},
		{"no scopes", "GET", "ada", nil, identity.Deny},
		{"username", "POST", "ada", nil, identity.Allow},
		{"other username", "POST", "adam", nil, identity.Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := alice()
			rc.Method, rc.Principal.Username, rc.Principal.Scopes = tt.method, tt.user, tt.scopes
			got, err := e.Decide(&rc)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Effect != tt.want {
				t.Errorf("Effect = %s, want %s (%v)", got.Effect, tt.want, got.Reasons)
			}
		})
	}
}

func TestTimeZoneAffectsContextTime(t *testing.T) {
	const policy = `
@id("hour") permit (principal, action, resource) when { context.time.hour == 8 && context.time.weekday == "tuesday" };`
	// 2024-01-01T23:30Z is Monday evening in UTC and Tuesday morning in
	// UTC+9.
	at := time.Date(2024, 1, 1, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		loc  *time.Location
		want identity.Effect
	}{
		{"utc by default", nil, identity.Deny},
		{"utc+9", time.FixedZone("JST", 9*3600), identity.Allow},
		{"utc-5", time.FixedZone("EST", -5*3600), identity.Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Policies: []PolicyFile{file("tz.cedar", policy)}, Location: tt.loc})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := e.Decide(&identity.RequestContext{Time: at})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Effect != tt.want {
				t.Errorf("Effect = %v, want %v", got.Effect, tt.want)
			}
		})
	}
}

func TestDecideNilRequestIsAnError(t *testing.T) {
	e := newEngine(t, file("a.cedar", `permit (principal, action, resource);`))
	if _, err := e.Decide(nil); err == nil {
		t.Fatal("Decide(nil) returned no error")
	}
}

func TestDecideConcurrent(t *testing.T) {
	e := newEngine(t, file("api.cedar", decidePolicies))
	done := make(chan identity.Decision)
	for range 8 {
		go func() {
			rc := alice()
			var d identity.Decision
			for range 50 {
				d, _ = e.Decide(&rc)
			}
			done <- d
		}()
	}
	for range 8 {
		if d := <-done; d.Effect != identity.Allow {
			t.Errorf("Effect = %v, want allow", d.Effect)
		}
	}
}

// TestEmailDomainRuleNeedsVerification: principal.email_verified sits next
// to principal.email (and context.identity.email_verified in the context),
// so a domain rule can require a verified address. Issue 12.7.
func TestEmailDomainRuleNeedsVerification(t *testing.T) {
	e := newEngine(t, file("domain.cedar", `
@id("corp-domain")
permit (principal, action, resource == Route::"api")
when { principal.email like "*@corp.test" && principal.email_verified && context.identity.email_verified };`))
	for _, tc := range []struct {
		email    string
		verified bool
		want     identity.Effect
	}{
		{"alice@corp.test", true, identity.Allow},
		{"alice@corp.test", false, identity.Deny},
		{"", false, identity.Deny},
	} {
		rc := alice()
		rc.Principal.Email, rc.Principal.EmailVerified = tc.email, tc.verified
		got, err := e.Decide(&rc)
		if err != nil || got.Effect != tc.want {
			t.Errorf("email %q verified %v: %v %v, want %v", tc.email, tc.verified, got.Effect, err, tc.want)
		}
	}
}
