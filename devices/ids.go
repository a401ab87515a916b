package devices

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// deviceIDLen is the length of a device id: 16 random bytes in lower-case
// base32 without padding.
const deviceIDLen = 26

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newDeviceID returns a fresh random device id.
func newDeviceID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// ValidID reports whether id has the form of a device id.
func ValidID(id string) bool {
	if len(id) != deviceIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// checkTrustDomain applies the SPIFFE trust domain rules: 1 to 255 bytes
// of lower-case letters, digits, ".", "-" and "_".
func checkTrustDomain(td string) error {
	if td == "" || len(td) > 255 {
		return fmt.Errorf("trust domain %q must be 1 to 255 bytes", td)
	}
	for i := 0; i < len(td); i++ {
		if c := td[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("trust domain %q may hold only a-z, 0-9, '.', '-' and '_'", td)
		}
	}
	return nil
}

// SPIFFEID is the URI SAN of a device's certificate.
func SPIFFEID(trustDomain, id string) string {
	return "spiffe://" + trustDomain + "/device/" + id
}

// maxNameBytes bounds a device's display name.
const maxNameBytes = 64

// checkName accepts 1 to 64 bytes of printable UTF-8 without control or
// formatting characters (no bidi overrides).
func checkName(name string) error {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) {
		return &InputError{Field: "name", Msg: fmt.Sprintf("must be 1 to %d bytes of UTF-8", maxNameBytes)}
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.Is(unicode.Cf, r) {
			return &InputError{Field: "name", Msg: "must hold printable characters only"}
		}
	}
	return nil
}
