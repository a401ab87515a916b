package riskengine

import (
	"slices"
	"strings"
	"testing"
)

func TestUAFamily(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"", "none/none"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "chrome/windows"},
		{chromeMac, "chrome/macos"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "chrome/linux"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36", "chrome/android"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "chrome/ios"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "chrome/other"},
		{firefoxWin, "firefox/windows"},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "firefox/linux"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", "firefox/macos"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", "firefox/ios"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "safari/macos"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "safari/ios"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "safari/ios"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87", "edge/windows"},
		{"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.2592.80", "edge/android"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "other/windows"},
		{"curl/8.5.0", "curl/other"},
		{"Go-http-client/1.1", "go/other"},
		{"Go-http-client/2.0", "go/other"},
		{"python-requests/2.32.3", "other/other"},
		{strings.Repeat("x", 10000) + " Chrome/1", "other/other"},
	}
	for _, tt := range tests {
		if got := uaFamily(tt.ua); got != tt.want {
			t.Errorf("uaFamily(%.60q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func FuzzUAFamily(f *testing.F) {
	f.Add(chromeMac)
	f.Add(firefoxWin)
	f.Add("curl/8.5.0")
	f.Fuzz(func(t *testing.T, ua string) {
		got := uaFamily(ua)
		if got == uaFamilyNone {
			return
		}
		browser, system, ok := strings.Cut(got, "/")
		if !ok || !slices.Contains(uaBrowsers[:], browser) || !slices.Contains(uaSystems[:], system) {
			t.Errorf("uaFamily(%q) = %q: not a known family", ua, got)
		}
	})
}

func TestUAFamilyAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = uaFamily(chromeMac) }); n != 0 {
		t.Errorf("uaFamily allocates %v times", n)
	}
}
