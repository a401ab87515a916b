package authn

import (
	"strings"
	"testing"
	"time"

	"ztproxy/identity"
)

func TestCheckStepUp(t *testing.T) {
	started := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	fresh, old := started.Add(10*time.Second), started.Add(-10*time.Minute)
	p := func(authTime time.Time, acr string, amr ...string) identity.Principal {
		return identity.Principal{Kind: identity.KindUser, ID: "i#u", AuthTime: authTime, ACR: acr, AMR: amr}
	}
	tests := []struct {
		name, req, idpACR string
		p                 identity.Principal
		ok                bool
		why               string
	}{
		{"mfa asserted in amr", "mfa", "", p(fresh, "", "pwd", "otp"), true, ""},
		{"mfa via the idp's step-up acr", "mfa", "urn:a urn:mfa", p(fresh, "urn:mfa", "pwd"), true, ""},
		{"mfa not asserted", "mfa", "urn:mfa", p(fresh, "urn:pwd", "pwd"), false, "second factor was needed"},
		{"no amr at all is not mfa", "mfa", "", p(fresh, ""), false, "(none)"},
		{"old sign-in reused", "mfa", "", p(old, "", "otp"), false, "reused an earlier sign-in"},
		{"no auth_time", "mfa", "", p(time.Time{}, "", "otp"), false, "no auth_time"},
		{"acr matches", "acr:gold", "", p(fresh, "gold"), true, ""},
		{"acr differs", "acr:gold", "", p(fresh, "silver", "otp"), false, `"gold" was needed`},
		{"reauth needs only a fresh sign-in", "reauth", "", p(fresh, "", "pwd"), true, ""},
		{"reauth refuses a reused sign-in", "reauth", "", p(old, "", "pwd"), false, "reused"},
		{"webauthn is never satisfied by the idp", "webauthn", "", p(fresh, "", "webauthn", "hwk"), false, "security key"},
		{"unknown requirement", "magic", "", p(fresh, "", "otp"), false, "unknown requirement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := CheckStepUp(tc.p, tc.req, tc.idpACR, started)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Fatalf("CheckStepUp = %v %q, want %v containing %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}
