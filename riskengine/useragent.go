package riskengine

import "strings"

// uaScanLimit bounds how much of a User-Agent header is inspected, so a
// huge header costs no more than a normal one.
const uaScanLimit = 512

// Browser and OS families of uaFamily. Anything unrecognised is "other";
// an empty header is "none".
var (
	uaBrowsers = [...]string{"other", "chrome", "firefox", "safari", "edge", "curl", "go"}
	uaSystems  = [...]string{"other", "windows", "macos", "linux", "ios", "android"}
	// uaFamilies holds every "browser/os" string once, so that uaFamily
	// never allocates.
	uaFamilies = func() (t [len(uaBrowsers)][len(uaSystems)]string) {
		for b, browser := range uaBrowsers {
			for o, system := range uaSystems {
				t[b][o] = browser + "/" + system
			}
		}
		return t
	}()
)

// uaFamilyNone is the family of a request without a User-Agent.
const uaFamilyNone = "none/none"

// uaFamily reduces a User-Agent header to "browser/os", for example
// "chrome/windows" or "curl/other". It is deliberately coarse: version
// numbers change weekly and must not look like a new client.
func uaFamily(ua string) string {
	if ua == "" {
		return uaFamilyNone
	}
	if len(ua) > uaScanLimit {
		ua = ua[:uaScanLimit]
	}
	return uaFamilies[uaBrowser(ua)][uaSystem(ua)]
}

// uaBrowser returns an index into uaBrowsers. The order of the checks
// matters: Edge and Opera say "Chrome", Chrome says "Safari".
func uaBrowser(ua string) int {
	switch {
	case strings.HasPrefix(ua, "curl/"):
		return 5
	case strings.HasPrefix(ua, "Go-http-client/"):
		return 6
	case strings.Contains(ua, "Edg/") || strings.Contains(ua, "EdgA/") || strings.Contains(ua, "EdgiOS/") || strings.Contains(ua, "Edge/"):
		return 4
	case strings.Contains(ua, "OPR/") || strings.Contains(ua, "SamsungBrowser/"):
		return 0
	case strings.Contains(ua, "Firefox/") || strings.Contains(ua, "FxiOS/"):
		return 2
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "CriOS/") || strings.Contains(ua, "Chromium/"):
		return 1
	case strings.Contains(ua, "Safari/") && strings.Contains(ua, "Version/"):
		return 3
	default:
		return 0
	}
}

// uaSystem returns an index into uaSystems. iOS says "like Mac OS X" and
// Android says "Linux", so they are checked first.
func uaSystem(ua string) int {
	switch {
	case strings.Contains(ua, "Windows"):
		return 1
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad") || strings.Contains(ua, "iPod"):
		return 4
	case strings.Contains(ua, "Android"):
		return 5
	case strings.Contains(ua, "Macintosh") || strings.Contains(ua, "Mac OS X"):
		return 2
	case strings.Contains(ua, "CrOS"):
		return 0
	case strings.Contains(ua, "Linux") || strings.Contains(ua, "X11"):
		return 3
	default:
		return 0
	}
}
