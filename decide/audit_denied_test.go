package decide

import (
	"testing"

	"ztproxy/identity"
)

// Issue 19 (dashboards): refusals are counted with the policy that
// decided them; an allow or a refusal no policy made has none.
func TestDecidingPolicy(t *testing.T) {
	for _, tc := range []struct {
		d    identity.Decision
		want string
	}{
		{identity.Decision{Effect: identity.Allow, PolicyIDs: []string{"permit-eng"}}, ""},
		{identity.Decision{Effect: identity.Deny, PolicyIDs: []string{"block-contractors", "other"}}, "block-contractors"},
		{identity.Decision{Effect: identity.StepUp, PolicyIDs: []string{"admin-needs-mfa"}, StepUp: []string{"mfa"}}, "admin-needs-mfa"},
		{identity.Decision{Effect: identity.Deny}, ""},
	} {
		if got := decidingPolicy(&tc.d); got != tc.want {
			t.Errorf("decidingPolicy(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
