package store

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// errInvalid prefixes argument errors; they are the caller's bug, not an
// outage, so they are not retried.
var errInvalid = errors.New("store: invalid argument")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

func validateSession(rec SessionRecord) error {
	switch {
	case rec.ID == "":
		return invalid("session id is empty")
	case rec.UserID == "":
		return invalid("session user id is empty")
	case rec.ExpiresAt.IsZero():
		return invalid("session %s has no expiry", "ExpiresAt")
	}
	return nil
}

// validateDevice checks a device record before it is written.
func validateDevice(d DeviceRecord) error {
	switch {
	case d.ID == "" || len(d.ID) > 128 || strings.ContainsRune(d.ID, 0):
		return invalid("device id must be 1 to 128 bytes without NUL")
	case len(d.Data) == 0 || len(d.Data) > MaxDeviceDataBytes:
		return invalid("device data must be 1 to %d bytes", MaxDeviceDataBytes)
	}
	return validateUserID(d.Owner)
}

func validateFlag(f Flag) error {
	if f.UserID == "" {
		return invalid("flag user id is empty")
	}
	if f.Level != FlagCompromised && f.Level != FlagWatch && f.Level != FlagStepUp {
		return invalid("flag level %q is not %q, %q or %q", f.Level, FlagCompromised, FlagWatch, FlagStepUp)
	}
	return nil
}

// validateUserID rejects ids that could break the embedded store's
// composite keys.
func validateUserID(userID string) error {
	if userID == "" {
		return invalid("user id is empty")
	}
	if strings.ContainsRune(userID, 0) {
		return invalid("user id contains NUL")
	}
	return nil
}

func validateCredential(c Credential) error {
	if err := validateUserID(c.UserID); err != nil {
		return err
	}
	if len(c.ID) == 0 {
		return invalid("credential id is empty")
	}
	if len(c.PublicKey) == 0 {
		return invalid("credential public key is empty")
	}
	return nil
}

// expired reports whether a deadline has passed; a zero deadline never does.
func expired(deadline, now time.Time) bool {
	return !deadline.IsZero() && !now.Before(deadline)
}

// signCountAllowed is WebAuthn's clone check (§6.1.1): the counter must grow,
// unless the authenticator does not implement one (both zero).
func signCountAllowed(stored, next uint32) bool {
	return next > stored || (stored == 0 && next == 0)
}

// pruneVictims returns the keys to drop so that at most limit entries of m
// remain: the least recently seen, ties broken by key for determinism.
func pruneVictims(m map[string]int64, limit int) []string {
	if len(m) <= limit {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] < m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys[:len(m)-limit]
}

// sealToken seals a refresh token; with no sealer it is kept as is.
func sealToken(s Sealer, token string) (data []byte, sealed bool, err error) {
	if token == "" {
		return nil, false, nil
	}
	if s == nil {
		return []byte(token), false, nil
	}
	data, err = s.Seal([]byte(token))
	if err != nil {
		return nil, false, fmt.Errorf("store: sealing refresh token: %w", err)
	}
	return data, true, nil
}

// openToken reverses sealToken. A sealed value without a sealer is an error
// rather than ciphertext handed out as a token.
func openToken(s Sealer, data []byte, sealed bool) (string, error) {
	if !sealed {
		return string(data), nil
	}
	if s == nil {
		return "", errors.New("store: refresh token is sealed but no sealer is configured")
	}
	plain, err := s.Open(data)
	if err != nil {
		return "", fmt.Errorf("store: opening refresh token: %w", err)
	}
	return string(plain), nil
}

// mergeObservation applies obs to p as the embedded store does it, inside
// one write transaction: counts add, map entries keep the latest time.
func mergeObservation(p *Profile, obs Observation, limit int) {
	p.UserID = obs.UserID
	p.RequestCount += obs.Requests
	p.FailedAuth += obs.FailedAuth
	for i, c := range obs.HourCounts {
		p.HourHistogram[i] += c
	}
	p.Networks = mergeSeen(p.Networks, obs.Networks, limit)
	p.UserAgents = mergeSeen(p.UserAgents, obs.UserAgents, limit)
	p.Devices = mergeSeen(p.Devices, obs.Devices, limit)
	if !obs.LastSeen.IsZero() && obs.LastSeen.After(p.LastSeen) {
		p.LastSeen = obs.LastSeen
		if obs.LastLocation != "" {
			p.LastLocation = obs.LastLocation
		}
	}
	if obs.Email != "" {
		p.Email = obs.Email
	}
	p.Version++
}

func mergeSeen(dst, src map[string]int64, limit int) map[string]int64 {
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for k, v := range src {
		if v > dst[k] {
			dst[k] = v
		} else if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
	for _, k := range pruneVictims(dst, limit) {
		delete(dst, k)
	}
	return dst
}

// maxMapKeyLen bounds profile map keys (network prefixes, user-agent
// families, device ids): they become DynamoDB attribute names.
const maxMapKeyLen = 200

func validateObservation(obs Observation) error {
	if err := validateUserID(obs.UserID); err != nil {
		return err
	}
	for family, m := range map[string]map[string]int64{"network": obs.Networks, "user agent": obs.UserAgents, "device": obs.Devices} {
		for k := range m {
			if k == "" || len(k) > maxMapKeyLen {
				return invalid("%s key must be 1 to %d bytes, got %d", family, maxMapKeyLen, len(k))
			}
		}
	}
	for i, c := range obs.HourCounts {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return invalid("hour count %d is not finite", i)
		}
	}
	if obs.Batch < 0 || obs.Batch > maxBatch {
		return invalid("batch %d out of range", obs.Batch)
	}
	if obs.Batch != 0 && !validWriter(obs.Writer) {
		return invalid("writer must be 1 to 32 characters [0-9a-z]")
	}
	if len(obs.Email) > maxEmailLen {
		return invalid("email must be at most %d bytes, got %d", maxEmailLen, len(obs.Email))
	}
	return nil
}

// maxBatch keeps Batch×batchStride+chunk inside the 2^53 that float64
// (and so every DynamoDB client) represents exactly.
const maxBatch = 1<<53/batchStride - 1

func validWriter(w string) bool {
	if w == "" || len(w) > 32 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// maxEmailLen is the longest address identity accepts (RFC 5321's path
// limit less the brackets).
const maxEmailLen = 254

// sameEmail compares addresses as operators type them: case-insensitively
// (the domain is, and no IdP we know issues two users whose addresses
// differ only in case of the local part).
func sameEmail(a, b string) bool { return a != "" && strings.EqualFold(a, b) }
