package awscreds_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"ztproxy/awscreds"
)

func TestConsoleURL(t *testing.T) {
	creds := awscreds.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "token", Expiration: time.Now().Add(time.Hour)}
	fed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("Action") != "getSigninToken" || q.Has("SessionDuration") {
			http.Error(w, "bad action", http.StatusBadRequest)
			return
		}
		var session map[string]string
		if err := json.Unmarshal([]byte(q.Get("Session")), &session); err != nil {
			http.Error(w, "bad session", http.StatusBadRequest)
			return
		}
		want := map[string]string{"sessionId": "ASIAEXAMPLE", "sessionKey": "secret", "sessionToken": "token"}
		for k, v := range want {
			if session[k] != v || len(session) != len(want) {
				http.Error(w, "bad session "+k, http.StatusBadRequest)
				return
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"SigninToken": "SIGNIN-TOKEN"})
	}))
	defer fed.Close()

	got, err := awscreds.ConsoleURL(context.Background(), creds, "https://proxy.example.com/", "https://console.aws.amazon.com/s3/", fed.Client(), fed.URL+"/federation")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	q := u.Query()
	if u.Path != "/federation" || q.Get("Action") != "login" || q.Get("SigninToken") != "SIGNIN-TOKEN" ||
		q.Get("Issuer") != "https://proxy.example.com/" || q.Get("Destination") != "https://console.aws.amazon.com/s3/" {
		t.Errorf("login URL = %s", got)
	}

	bad := creds
	bad.SessionToken = "other"
	if _, err := awscreds.ConsoleURL(context.Background(), bad, "x", "https://console.aws.amazon.com/", fed.Client(), fed.URL+"/federation"); err == nil {
		t.Error("federation rejection not reported")
	}
	if _, err := awscreds.ConsoleURL(context.Background(), creds, "x", "javascript:alert(1)", fed.Client(), fed.URL); err == nil {
		t.Error("non-https destination accepted")
	}
}

func TestCredentialProcessJSON(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	got := string(awscreds.CredentialProcessJSON(awscreds.Credentials{AccessKeyID: "ASIA1", SecretAccessKey: "s", SessionToken: "t", Expiration: exp}))
	want := `{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-01-02T02:04:05Z"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
