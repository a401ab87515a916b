package authz

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

func TestPolicyUsage(t *testing.T) {
	tests := []struct {
		name, condition string
		want            usage
	}{
		{"no context", `principal in Group::"eng"`, usage{}},
		{"leaf", `context.http.method == "GET"`, usage{leaves: leafBit("http", "method")}},
		{"index syntax", `context["network"]["client_ip"].isLoopback()`, usage{leaves: leafBit("network", "client_ip")}},
		{"nested leaf record", `context.identity.claims.dept == "x"`, usage{leaves: leafBit("identity", "claims")}},
		{"has on sub-record", `context.device has posture`, usage{leaves: topMask("device")}},
		{"sub-record compared", `context.risk == {score: 0}`, usage{leaves: topMask("risk")}},
		{"has on context", `context has http`, usage{leaves: allLeaves}},
		{"context as a value", `(if true then context else {}).http.path == ""`, usage{leaves: allLeaves, principalAttrs: true}},
		{"principal attribute", `principal.email like "*@corp"`, usage{principalAttrs: true}},
		{"principal has", `principal has email`, usage{principalAttrs: true}},
		{"resource attribute", `resource has owner`, usage{}},
		{"computed entity", `(if true then principal else resource).email == ""`, usage{principalAttrs: true}},
		{"unknown key", `context.nope.x == 1`, usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := cedar.NewPolicyListFromBytes("u.cedar", []byte(`permit (principal, action, resource) when { `+tt.condition+` };`))
			if err != nil {
				t.Fatal(err)
			}
			got := policyUsage(list[0])
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(usage{})); diff != "" {
				t.Errorf("policyUsage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOptimizationsPreserveDecisions checks that deciding with the route
// index, context projection and caches gives the same decisions as
// evaluating every policy against the full context without caches.
func TestOptimizationsPreserveDecisions(t *testing.T) {
	text := realisticPolicies() + decidePolicies + `
@id("uses-everything") forbid (principal, action, resource) when { context has nope || principal.email == "evil@x" };`
	fast := newEngine(t, file("all.cedar", text))
	slow := newEngine(t, file("all.cedar", text))
	slow.caches = nil
	list, errs := parseFile(file("all.cedar", text))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	all := &policyList{}
	for n, p := range list {
		pi, err := describePolicy("all.cedar", n, p)
		if err != nil {
			t.Fatal(err)
		}
		all.add(cedar.PolicyID(pi.id), p, fullUsage)
	}
	all.seal()
	slow.index = routeIndex{byRoute: map[string]*policyList{}, anyRoute: all}

	var requests []identity.RequestContext
	for i := range 40 {
		rc := benchRequest()
		rc.Route = []string{"app-7", "app-3", "api", "unknown"}[i%4]
		rc.Method = []string{"GET", "POST", "DELETE"}[i%3]
		rc.Time = rc.Time.Add(time.Duration(i) * 97 * time.Minute)
		if i%5 == 0 {
			rc.ClientIP = netip.MustParseAddr("203.0.113.9")
		}
		if i%6 == 0 {
			rc.Risk = identity.Risk{Score: 80, Level: identity.RiskHigh}
		}
		if i%7 == 0 {
			rc.Principal.Groups = []string{"contractors-1", "admins-3"}
			rc.Device = identity.Device{}
		}
		if i%4 == 1 {
			rc.Principal.Claims = map[string]string{"department": "blocked-2"}
		}
		requests = append(requests, rc, alice(), identity.RequestContext{})
	}
	for round := range 2 { // the second round hits the caches
		for i := range requests {
			want, err := slow.Decide(&requests[i])
			if err != nil {
				t.Fatal(err)
			}
			got, err := fast.Decide(&requests[i])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round %d request %d (-full +optimized):\n%s", round, i, diff)
			}
		}
	}
}
