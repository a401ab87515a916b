package authn

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestClassifyIdPError: issue 22.5, every failed code exchange was shown as
// "did not accept the sign-in code". Real token requests against an
// httptest token endpoint (the answers a real IdP gives, and a hung one)
// are classified as refused, unreachable or timed out.
func TestClassifyIdPError(t *testing.T) {
	mux := http.NewServeMux()
	answer := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	hang := make(chan struct{})
	mux.Handle("/invalid_grant", answer(400, "application/json", `{"error":"invalid_grant","error_description":"grant request is invalid"}`))
	mux.Handle("/invalid_client", answer(401, "application/json", `{"error":"invalid_client"}`))
	mux.Handle("/ok_with_error", answer(200, "application/json", `{"error":"access_denied"}`))
	mux.Handle("/server_error", answer(500, "text/html", `<h1>oops</h1>`))
	mux.Handle("/unavailable", answer(503, "application/json", `{"error":"temporarily_unavailable"}`))
	mux.Handle("/throttled", answer(429, "application/json", `{"error":"slow_down"}`))
	mux.Handle("/server_error_200", answer(200, "application/json", `{"error":"server_error"}`))
	mux.Handle("/garbage", answer(200, "application/json", `not json`))
	mux.HandleFunc("/hung", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hang)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/token"
	closed.Close()

	client := &http.Client{Timeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		url, code, oauthError string
		status                int
	}{
		{srv.URL + "/invalid_grant", CodeIdPRefused, "invalid_grant", 400},
		{srv.URL + "/invalid_client", CodeIdPRefused, "invalid_client", 400},
		{srv.URL + "/ok_with_error", CodeIdPRefused, "access_denied", 400},
		{srv.URL + "/server_error", CodeIdPUnreachable, "", 503},
		{srv.URL + "/unavailable", CodeIdPUnreachable, "temporarily_unavailable", 503},
		{srv.URL + "/throttled", CodeIdPUnreachable, "slow_down", 503},
		{srv.URL + "/server_error_200", CodeIdPUnreachable, "server_error", 503},
		{srv.URL + "/garbage", CodeIdPUnreachable, "", 503},
		{closedURL, CodeIdPUnreachable, "", 503},
		{srv.URL + "/hung", CodeIdPTimeout, "", 504},
	} {
		cfg := oauth2.Config{ClientID: "c", ClientSecret: "s", Endpoint: oauth2.Endpoint{TokenURL: tc.url}}
		_, err := cfg.Exchange(context.WithValue(context.Background(), oauth2.HTTPClient, client), "code")
		if err == nil {
			t.Fatalf("%s: exchange succeeded", tc.url)
		}
		f := classifyIdPError(err)
		if f.code != tc.code || f.oauthError != tc.oauthError {
			t.Errorf("%s: classified %+v, want %s/%q (error %v)", tc.url, f, tc.code, tc.oauthError, err)
		}
		if se := idpSignInError(err); se.Status != tc.status || se.Code != tc.code || se.Title == "" {
			t.Errorf("%s: page %d %s %q", tc.url, se.Status, se.Code, se.Title)
		}
	}
	if f := classifyIdPError(context.DeadlineExceeded); f.code != CodeIdPTimeout {
		t.Errorf("deadline exceeded: %+v", f)
	}
}

func TestAuthorizationError(t *testing.T) {
	if e := authorizationError("access_denied", "user cancelled"); e.Status != 400 || e.Code != "idp_error" {
		t.Errorf("access_denied: %d %s", e.Status, e.Code)
	}
	if e := authorizationError("temporarily_unavailable", ""); e.Status != 503 || e.Code != CodeIdPUnreachable {
		t.Errorf("temporarily_unavailable: %d %s", e.Status, e.Code)
	}
}
