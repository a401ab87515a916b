package awscreds

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"ztproxy/identity"
)

// Errors for identities whose attributes may not enter a role's session
// templates; the proxy maps them to 403 with the reason in the audit line.
var (
	// ErrEmailUnverified means a role's templates read {{.Email}} and the
	// identity provider did not assert email_verified for the principal.
	ErrEmailUnverified = errors.New("awscreds: email not verified")
	// ErrTemplateInput means a value a role's templates read holds a
	// character IAM interprets (a wildcard, a policy variable, an ARN or
	// path separator) or STS refuses.
	ErrTemplateInput = errors.New("awscreds: identity value refused in session templates")
)

// iamWildcards are characters IAM interprets inside policy strings:
// wildcards in ARNs and in the *Like condition operators, and the
// ${...} policy-variable syntax. A user-controlled value containing one
// could widen what a templated policy grants (reports/*@example.com/*).
const iamWildcards = "*?${}"

// iamSeparators split ARNs into fields and resources into paths: a value
// holding "/" names a sub-folder of someone else's prefix
// (reports/alice@example.com/x/*), one holding ":" can shift ARN fields.
const iamSeparators = "/:"

// checkInputs refuses a request whose template inputs could change what a
// rendered policy or tag means. Only the fields the role's templates read
// are checked, so an unused attribute never blocks a mint.
func (r *role) checkInputs(p identity.Principal, data templateData) error {
	used := r.tagFields | r.policyFields
	if used&fieldEmail != 0 && data.Email != "" && !p.EmailVerified {
		return fmt.Errorf("%w: role %q templates read the email, and the identity provider did not verify %q", ErrEmailUnverified, r.cfg.Name, data.Email)
	}
	for _, f := range []struct {
		bit    fieldSet
		name   string
		values []string
	}{
		{fieldEmail, "Email", []string{data.Email}},
		{fieldSub, "Sub", []string{data.Sub}},
		{fieldGroups, "Groups", p.Groups},
		{fieldDeviceID, "DeviceID", []string{data.DeviceID}},
		{fieldRiskLevel, "RiskLevel", []string{data.RiskLevel}},
		{fieldRoute, "Route", []string{data.Route}},
	} {
		if used&f.bit == 0 {
			continue
		}
		refused := iamWildcards
		// Email is the documented path component (reports/<email>/), in a
		// template or through ${aws:PrincipalTag/email}: no separators.
		if r.policyFields&f.bit != 0 || f.bit == fieldEmail {
			refused += iamSeparators
		}
		for _, v := range f.values {
			if err := checkInput(v, refused); err != nil {
				return fmt.Errorf("%w: role %q: {{.%s}} %q %v", ErrTemplateInput, r.cfg.Name, f.name, v, err)
			}
		}
	}
	return nil
}

// checkInput reports the first character of v that is in refused or is a
// control character.
func checkInput(v, refused string) error {
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	for _, c := range v {
		switch {
		case strings.ContainsRune(refused, c):
			return fmt.Errorf("contains %q, which IAM interprets", c)
		case unicode.IsControl(c):
			return fmt.Errorf("contains the control character %U", c)
		}
	}
	return nil
}

// SourceIdentity returns the STS SourceIdentity for a principal: its
// verified email, else its subject, else its id. A value STS accepts as it
// is ([\w+=,.@-], 2–64 characters, no "aws:" prefix) is used unchanged; any
// other is sanitised (characters outside the set become "-") and always
// ends in "-" plus 8 hex digits of the SHA-256 of the original, so that no
// rewritten value can equal another user's exact one: IAM policies compare
// ${aws:SourceIdentity} literally.
func SourceIdentity(p identity.Principal) string {
	raw := p.Subject
	if p.Email != "" && p.EmailVerified {
		raw = p.Email
	}
	if raw == "" {
		raw = p.ID
	}
	return sanitizeName(raw, maxSourceIdentityLen)
}
