package portal

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"ztproxy/decide"
)

// Issue 18 (gRPC): a refused gRPC call gets a trailers-only gRPC status,
// never a page; gRPC-Web and other content types keep the usual answer.
func TestWriteErrorGRPC(t *testing.T) {
	for _, tc := range []struct {
		ct         string
		err        error
		wantStatus string
	}{
		{"application/grpc", &decide.Error{Status: 403, Code: "forbidden", Msg: "no\r\nway %"}, "7"},
		{"application/grpc+proto", &decide.RateLimited{}, "8"},
		{"application/grpc;charset=utf-8", &decide.Error{Status: 504, Code: "upstream_timeout", Msg: "late"}, "4"},
		{"application/grpc-web", &decide.Error{Status: 403, Code: "forbidden", Msg: "x"}, ""},
		{"application/json", &decide.Error{Status: 403, Code: "forbidden", Msg: "x"}, ""},
	} {
		r := httptest.NewRequest("POST", "https://app.example.com/pkg.Svc/Call", nil)
		r.Header.Set("Content-Type", tc.ct)
		w := httptest.NewRecorder()
		status := WriteError(w, r, tc.err, "rid")
		h := w.Result().Header
		if h.Get("Grpc-Status") != tc.wantStatus {
			t.Errorf("%s: grpc-status %q, want %q", tc.ct, h.Get("Grpc-Status"), tc.wantStatus)
		}
		if tc.wantStatus == "" {
			continue
		}
		if w.Code != http.StatusOK || h.Get("Content-Type") != "application/grpc" || w.Body.Len() != 0 || status < 400 {
			t.Errorf("%s: %d %v body %q (recorded status %d)", tc.ct, w.Code, h, w.Body, status)
		}
		if msg := h.Get("Grpc-Message"); msg == "" || !validGRPCMessage(msg) {
			t.Errorf("%s: grpc-message %q is not percent-encoded printable ASCII", tc.ct, msg)
		}
	}
}

func validGRPCMessage(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
