package authn

import (
	"strings"
)

// Length limits of an email address: RFC 5321 section 4.5.3.1 (a path is
// at most 256 octets including the angle brackets; a local part at most
// 64).
const (
	maxEmailBytes      = 254
	maxEmailLocalBytes = 64
	maxDomainBytes     = 253
	maxDomainLabel     = 63
)

// checkEmail returns "" when s is exactly one plain email address, and
// otherwise why it is not. Plain means an RFC 5322 addr-spec whose local
// part is a dot-atom and whose domain is a host name: one "@", no display
// name, list, quoted string, comment, domain literal, whitespace, control
// or non-ASCII character, within the RFC 5321 lengths. The email claim
// reaches policy (principal.email like "*@corp.example") and upstreams
// (X-Ztp-Email), so anything that could read as two addresses, or as
// another domain than the text after the one "@", is not an email.
func checkEmail(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > maxEmailBytes:
		return "longer than 254 bytes"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return "contains whitespace or a control character"
		case c >= 0x80:
			return "contains a non-ASCII character"
		case strings.IndexByte(`,;<>"()[]\:`, c) >= 0:
			return "a list, display name, quoted string, comment or domain literal, not one plain address"
		}
	}
	local, domain, _ := strings.Cut(s, "@")
	switch {
	case strings.Count(s, "@") != 1:
		return "must contain exactly one @"
	case len(local) > maxEmailLocalBytes:
		return "local part longer than 64 bytes"
	case !isDotAtom(local):
		return "local part is not a dot-atom"
	case !isHostName(domain):
		return "domain is not a host name"
	}
	return ""
}

// isDotAtom reports whether s is an RFC 5322 dot-atom-text: atoms of atext
// separated by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) < 0 {
			return false
		}
	}
	return true
}

// isHostName reports whether s is a DNS host name: labels of letters,
// digits and inner hyphens, 1 to 63 bytes each, 253 in all, no trailing
// dot.
func isHostName(s string) bool {
	if s == "" || len(s) > maxDomainBytes {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > maxDomainLabel || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
