package identity

import (
	"strings"
	"testing"
)

// Issue 12.4: one canonical spelling of a method everywhere.
func TestValidMethod(t *testing.T) {
	for _, m := range []string{"GET", "DELETE", "PROPFIND", "VERSION-CONTROL", "X_CUSTOM", strings.Repeat("A", 32)} {
		if !ValidMethod(m) {
			t.Errorf("%q refused", m)
		}
	}
	for _, m := range []string{"", "delete", "Get", "GET ", " GET", "G\tET", "GET1", "M-SEARCH*", "GET\x00", strings.Repeat("A", 33), "ÜBER"} {
		if ValidMethod(m) {
			t.Errorf("%q accepted", m)
		}
	}
}

// FuzzValidMethod checks that an accepted method is exactly its own upper
// case, a token, and bounded.
func FuzzValidMethod(f *testing.F) {
	for _, s := range []string{"GET", "delete", "DELETE", "Delete", "PROPFIND", "M-SEARCH", "GET\r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, m string) {
		if !ValidMethod(m) {
			return
		}
		if strings.ToUpper(m) != m || len(m) == 0 || len(m) > MaxMethodLength {
			t.Fatalf("%q accepted", m)
		}
		if strings.ContainsFunc(m, func(r rune) bool { return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", r) }) {
			t.Fatalf("%q accepted with a non-token byte", m)
		}
	})
}
