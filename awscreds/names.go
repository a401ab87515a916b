package awscreds

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"ztproxy/identity"
)

const (
	maxSourceIdentityLen = 64
	maxSessionPrefixLen  = 32
	// hashedSuffixLen is "-" plus 8 hex digits, appended when a name is
	// truncated so two long identities sharing a prefix stay distinct.
	hashedSuffixLen = 9
)

// sanitizeName applies SourceIdentity's rules with a length limit.
func sanitizeName(raw string, limit int) string {
	if nameKept(raw, limit) {
		return raw
	}
	name := raw
	for len(name) >= 4 && strings.EqualFold(name[:4], "aws:") {
		name = name[4:]
	}
	name = strings.Map(func(r rune) rune {
		if nameByte(r) {
			return r
		}
		return '-'
	}, name)
	sum := sha256.Sum256([]byte(raw))
	if len(name) > limit-hashedSuffixLen {
		name = name[:limit-hashedSuffixLen]
	}
	return name + "-" + hex.EncodeToString(sum[:4])
}

// nameKept reports whether raw is acceptable to STS as it is.
func nameKept(raw string, limit int) bool {
	if len(raw) < 2 || len(raw) > limit || len(raw) >= 4 && strings.EqualFold(raw[:4], "aws:") {
		return false
	}
	for _, r := range raw {
		if !nameByte(r) {
			return false
		}
	}
	return true
}

func nameByte(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r)
}

// roleSessionName returns a short user-derived name (the email's local part,
// else the subject) plus "-" and 8 random hex digits, at most 41 characters.
func roleSessionName(p identity.Principal) string {
	base := ""
	if p.EmailVerified {
		base = p.Email
	}
	if at := strings.LastIndexByte(base, '@'); at > 0 {
		base = base[:at]
	}
	if base == "" {
		base = p.Subject
	}
	if base == "" {
		base = p.ID
	}
	var nonce [4]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+).
	return sanitizeName(base, maxSessionPrefixLen) + "-" + hex.EncodeToString(nonce[:])
}
