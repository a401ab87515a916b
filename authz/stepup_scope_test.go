package authz

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// stepUpScopePolicies: the demo's shape before issue 15.4 (an admin
// step-up for everyone, a permit for engineers only), plus permits that
// themselves read the factor a step-up gives, and one forbid without
// @step_up.
const stepUpScopePolicies = `
@id("eng-admin")
@reason("the admin area is for engineers (group eng)")
permit (principal in Group::"eng", action, resource == Route::"admin");

@id("admin-needs-key")
@step_up("webauthn")
@reason("the admin area needs your security key")
forbid (principal, action, resource == Route::"admin")
unless { context.auth.amr.contains("webauthn") && context.auth.age_seconds < 900 };

@id("ops-with-mfa")
permit (principal in Group::"ops", action, resource == Route::"ops")
when { context.auth.mfa };

@id("ops-needs-mfa")
@step_up("mfa")
forbid (principal, action, resource == Route::"ops")
unless { context.auth.mfa && context.auth.age_seconds < 300 };

@id("gold-with-acr")
permit (principal in Group::"eng", action, resource == Route::"gold")
when { context.auth.acr == "urn:gold" };

@id("gold-needs-acr")
@step_up("acr:urn:gold")
forbid (principal, action, resource == Route::"gold")
unless { context.auth.acr == "urn:gold" };

@id("gold-office-only")
forbid (principal, action, resource == Route::"gold")
unless { context.network.client_ip.isInRange(ip("10.0.0.0/8")) };

@id("wiki-key-for-all")
@step_up("webauthn")
forbid (principal, action, resource == Route::"wiki")
unless { context.auth.amr.contains("webauthn") };
`

// TestStepUpOnlyWhenAPermitCouldApply: issue 15.4, a step-up is offered
// only to someone a permit could allow after it; everyone else is denied
// at once, as if the step-up forbid were not there. Deny stays deny.
func TestStepUpOnlyWhenAPermitCouldApply(t *testing.T) {
	e := newEngine(t, file("scope.cedar", stepUpScopePolicies))
	noPermit := identity.Decision{Effect: identity.Deny, Reasons: []string{defaultDenyReason}}
	for _, tc := range []struct {
		name   string
		route  string
		groups []string
		amr    []string
		acr    string
		ip     string
		want   identity.Decision
	}{
		{name: "engineer without a key is asked for it", route: "admin", groups: []string{"eng"},
			want: identity.Decision{Effect: identity.StepUp, PolicyIDs: []string{"admin-needs-key"}, StepUp: []string{"webauthn"},
				Reasons: []string{"the admin area needs your security key"}}},
		{name: "engineer with a fresh key is allowed", route: "admin", groups: []string{"eng"}, amr: []string{"pwd", "hwk", "webauthn"},
			want: identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"eng-admin"}}},
		{name: "contractor is denied, not sent to enrol a key", route: "admin", groups: []string{"contractors"},
			want: withHints(noPermit, "the admin area is for engineers (group eng)")},
		{name: "contractor with a key is still denied", route: "admin", groups: []string{"contractors"}, amr: []string{"hwk", "webauthn"},
			want: withHints(noPermit, "the admin area is for engineers (group eng)")},
		{name: "a permit that needs the factor itself still gets step-up", route: "ops", groups: []string{"ops"},
			want: identity.Decision{Effect: identity.StepUp, PolicyIDs: []string{"ops-needs-mfa"}, StepUp: []string{"mfa"}}},
		{name: "outside ops no mfa would help", route: "ops", groups: []string{"eng"}, want: noPermit},
		{name: "an acr permit gets the acr step-up", route: "gold", groups: []string{"eng"}, ip: "10.1.2.3",
			want: identity.Decision{Effect: identity.StepUp, PolicyIDs: []string{"gold-needs-acr"}, StepUp: []string{"acr:urn:gold"}}},
		{name: "a forbid without step-up keeps it a deny", route: "gold", groups: []string{"eng"}, ip: "192.0.2.1",
			want: identity.Decision{Effect: identity.Deny, PolicyIDs: []string{"gold-needs-acr", "gold-office-only"}}},
		{name: "a route no permit names is a deny", route: "wiki", groups: []string{"eng"}, want: noPermit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := alice()
			rc.Route, rc.Principal.Groups, rc.Principal.ACR = tc.route, tc.groups, tc.acr
			rc.Principal.AMR = append([]string{"pwd"}, tc.amr...)
			rc.Principal.AuthTime = fixedNow.Add(-time.Minute)
			if tc.ip != "" {
				rc.ClientIP = mustAddr(tc.ip)
			}
			got, err := e.Decide(&rc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func withHints(d identity.Decision, hints ...string) identity.Decision {
	d.Hints = hints
	return d
}

// TestStepUpNeverAllows: over every combination of groups, factors,
// networks and routes above, the engine allows only what Cedar itself
// allows with every policy, and a request Cedar denies is a deny or a
// step-up, never an allow (issue 15.4: the step-up check must not open
// anything).
func TestStepUpNeverAllows(t *testing.T) {
	e := newEngine(t, file("scope.cedar", stepUpScopePolicies))
	ps, err := cedar.NewPolicySetFromBytes("scope.cedar", []byte(stepUpScopePolicies))
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"admin", "ops", "gold", "wiki", "other"} {
		for _, groups := range [][]string{nil, {"eng"}, {"ops"}, {"contractors"}, {"eng", "ops"}} {
			for _, amr := range [][]string{{"pwd"}, {"pwd", "mfa"}, {"pwd", "hwk", "webauthn"}} {
				for _, acr := range []string{"", "urn:gold"} {
					for _, ip := range []string{"10.1.2.3", "192.0.2.1"} {
						rc := alice()
						rc.Route, rc.Principal.Groups, rc.Principal.AMR, rc.Principal.ACR, rc.ClientIP = route, groups, amr, acr, mustAddr(ip)
						got, err := e.Decide(&rc)
						if err != nil {
							t.Fatal(err)
						}
						entities := &requestEntities{uid: principalUID(&rc.Principal), principal: &rc.Principal, withAttrs: true}
						want, _ := cedar.Authorize(ps, entities, cedar.Request{
							Principal: entities.uid, Action: actionUID(rc.Method),
							Resource: types.NewEntityUID(typeRoute, types.String(route)),
							Context:  buildContext(&rc, fixedNow, e.loc, allLeaves, nil),
						})
						if (got.Effect == identity.Allow) != (want == cedar.Allow) {
							t.Errorf("%s %v %v %q %s: engine %s, Cedar %v", route, groups, amr, acr, ip, got.Effect, want)
						}
					}
				}
			}
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
