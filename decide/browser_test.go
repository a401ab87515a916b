package decide

import (
	"testing"
)

func TestPickStepUp(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"mfa"}, "mfa"},
		{[]string{"mfa", "webauthn"}, "webauthn"},
		{[]string{"webauthn", "acr:gold"}, "acr:gold"},
		{nil, "mfa"},
	} {
		if got := pickStepUp(tc.in); got != tc.want {
			t.Errorf("pickStepUp(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
