package demo

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAppPageReadable: issue 15.10, the demo app showed assertion times
// as 1.79630115e+09 and had no way back to whoami or sign-out.
func TestAppPageReadable(t *testing.T) {
	now := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	payload := `{"iat":1796317200,"exp":1796317260,"auth_time":1796317140,"sub":"http://127.0.0.1:8444#alice","groups":["eng","ops"]}`
	jwt := "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	req := httptest.NewRequest("GET", "/hello", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Ztp-Assertion", jwt)
	req.Header.Set("X-Ztp-Email", "alice@demo.test")
	rec := httptest.NewRecorder()
	appHandler{now: func() time.Time { return now }}.ServeHTTP(rec, req)
	page := rec.Body.String()
	for _, want := range []string{"2026-12-03 17:00:00 UTC (now)", "2026-12-03 17:01:00 UTC (in 1m0s)", "2026-12-03 16:59:00 UTC (1m0s ago)",
		"eng, ops", `href="/.ztp/whoami"`, `href="/.ztp/logout"`, "as <b>alice@demo.test</b>", `<td class="name">X-Ztp-Email</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "e+09") {
		t.Error("a time in exponent notation")
	}
}
