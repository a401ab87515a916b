package signals

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func mustTime() time.Time { return time.Unix(1_800_000_000, 0) }

// TestParseSubject: issue 17, RFC 9493 subject formats resolve to users,
// IdP sessions and devices; anything else is refused with invalid_request.
func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		in                     string
		users, emails, sids, d []string
		bad                    bool
	}{
		{in: `{"format":"iss_sub","iss":"https://idp","sub":"alice"}`, users: []string{"https://idp#alice"}},
		{in: `{"format":"email","email":"alice@corp.test"}`, emails: []string{"alice@corp.test"}},
		{in: `{"format":"opaque","id":"https://idp#bob"}`, users: []string{"https://idp#bob"}},
		{in: `{"format":"complex","user":{"format":"iss_sub","iss":"https://idp","sub":"a"},"session":{"format":"opaque","id":"sid-1"},"device":{"format":"opaque","id":"dev-1"}}`,
			users: []string{"https://idp#a"}, sids: []string{"sid-1"}, d: []string{"dev-1"}},
		{in: `{"user":{"format":"email","email":"x@y"}}`, emails: []string{"x@y"}},
		{in: `{"format":"phone_number","phone_number":"+1555"}`, bad: true},
		{in: `{"format":"iss_sub","iss":"https://idp"}`, bad: true},
		{in: `{"format":"email","email":"nope"}`, bad: true},
		{in: `{"format":"opaque"}`, bad: true},
		{in: `{"format":"complex"}`, bad: true},
		{in: `{"format":"complex","user":{"format":"complex","user":{"format":"complex","user":{}}}}`, bad: true},
		{in: `"alice"`, bad: true},
	} {
		var s subject
		err := parseSubject(json.RawMessage(tc.in), "", &s, 0)
		var e *Error
		if tc.bad {
			if !errors.As(err, &e) || e.Code != ErrCodeInvalidRequest {
				t.Errorf("%s: got %v, want invalid_request", tc.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(s.users, tc.users) || !slices.Equal(s.emails, tc.emails) || !slices.Equal(s.sids, tc.sids) || !slices.Equal(s.devices, tc.d) {
			t.Errorf("%s: %+v, %v", tc.in, s, err)
		}
	}
}
