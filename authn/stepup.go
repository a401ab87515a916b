package authn

import (
	"fmt"
	"strings"
	"time"

	"ztproxy/identity"
)

// Step-up requirements, as written in a policy's @step_up annotation.
const (
	StepUpMFA      = "mfa"
	StepUpWebAuthn = "webauthn"
	// StepUpReauth is not a policy value: it asks the IdP for a fresh
	// sign-in (any factors) before the user changes their security keys.
	StepUpReauth = "reauth"
	stepUpACR    = "acr:"
)

// stepUpClockSkew tolerates an IdP whose clock is a little behind.
const stepUpClockSkew = time.Minute

// CheckStepUp reports whether a principal who just signed in satisfies a
// step-up requirement. The user must have authenticated during this
// attempt (auth_time not before it started), and the IdP must assert the
// factor explicitly: a provider that ignores acr_values or sends no amr
// does not pass by omission. why explains a failure for the user.
func CheckStepUp(p identity.Principal, requirement, idpStepUpACR string, started time.Time) (ok bool, why string) {
	if p.AuthTime.IsZero() {
		return false, "the identity provider did not say when you signed in (no auth_time)"
	}
	if p.AuthTime.Before(started.Add(-stepUpClockSkew)) {
		return false, fmt.Sprintf("the identity provider reused an earlier sign-in (%s) instead of asking again", p.AuthTime.UTC().Format(time.RFC3339))
	}
	switch {
	case requirement == StepUpReauth:
		return true, ""
	case requirement == StepUpMFA:
		if p.HasMFA() || (idpStepUpACR != "" && acrIn(p.ACR, idpStepUpACR)) {
			return true, ""
		}
		return false, fmt.Sprintf("a second factor was needed; the identity provider reported methods %s and level %q", listOrNone(p.AMR), p.ACR)
	case strings.HasPrefix(requirement, stepUpACR):
		want := strings.TrimPrefix(requirement, stepUpACR)
		if p.ACR == want {
			return true, ""
		}
		return false, fmt.Sprintf("authentication level %q was needed; the identity provider reported %q", want, p.ACR)
	case requirement == StepUpWebAuthn:
		return false, "a security key verified by ztproxy is needed"
	}
	return false, fmt.Sprintf("unknown requirement %q", requirement)
}

// StepUpRequest turns a requirement into the IdP request parameters.
func (b *Browser) StepUpRequest(idpName, requirement string) LoginOptions {
	opts := LoginOptions{StepUp: requirement, Prompt: "login", MaxAge: 0}
	if idp := b.idps[idpName]; idp != nil {
		opts.ACRValues = idp.cfg.StepUpACR
		if idp.cfg.StepUpMaxAge > 0 {
			opts.MaxAge = int(idp.cfg.StepUpMaxAge / time.Second)
		}
	}
	if v, ok := strings.CutPrefix(requirement, stepUpACR); ok {
		opts.ACRValues = v
	}
	return opts
}

func acrIn(acr, values string) bool {
	for _, v := range strings.Fields(values) {
		if acr == v {
			return true
		}
	}
	return false
}

func listOrNone(list []string) string {
	if len(list) == 0 {
		return "(none)"
	}
	return strings.Join(list, ", ")
}
