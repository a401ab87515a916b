package identity

// MaxMethodLength bounds an HTTP method; the longest registered one,
// UPDATEREDIRECTREF, has 17 bytes.
const MaxMethodLength = 32

// ValidMethod reports whether m is an HTTP method in its one canonical
// spelling: 1 to MaxMethodLength bytes of A–Z, "-" and "_", the methods
// nginx accepts. Methods are case-sensitive (RFC 9110 §9.1), so "delete"
// is not DELETE to an upstream that dispatches on exact names; refusing
// every other spelling keeps the policy's Action::"<METHOD>", its
// context.http.method and what the upstream receives one and the same
// string. Unregistered extension methods (PROPFIND, PURGE, …) are valid.
func ValidMethod(m string) bool {
	if m == "" || len(m) > MaxMethodLength {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
