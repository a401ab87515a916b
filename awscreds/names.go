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

// SourceIdentity returns the STS SourceIdentity for a principal: its email,
// else its subject, else its id, sanitised deterministically to STS's rules.
// A leading "aws:" (any case) is removed, characters outside [\w+=,.@-]
// become "-", a result shorter than 2 is padded with "_", and a result longer
// than 64 keeps its first 55 characters plus "-" and 8 hex digits of the
// SHA-256 of the full sanitised value.
func SourceIdentity(p identity.Principal) string {
	raw := p.Email
	if raw == "" {
		raw = p.Subject
	}
	if raw == "" {
		raw = p.ID
	}
	return sanitizeName(raw, maxSourceIdentityLen)
}

// sanitizeName applies SourceIdentity's rules with a length limit.
func sanitizeName(raw string, limit int) string {
	for len(raw) >= 4 && strings.EqualFold(raw[:4], "aws:") {
		raw = raw[4:]
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r) {
			return r
		}
		return '-'
	}, raw)
	for len(name) < 2 {
		name += "_"
	}
	if len(name) > limit {
		sum := sha256.Sum256([]byte(name))
		name = name[:limit-hashedSuffixLen] + "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// roleSessionName returns a short user-derived name (the email's local part,
// else the subject) plus "-" and 8 random hex digits, at most 41 characters.
func roleSessionName(p identity.Principal) string {
	base := p.Email
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
