package signals

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseSET feeds attacker bytes to everything that reads a SET before
// its signature is checked (typ, iss) and to the subject and event
// parsers after it: they may refuse, never panic, and a refusal is always
// an *Error with an RFC 8935 code.
func FuzzParseSET(f *testing.F) {
	for _, seed := range []string{
		`{"typ":"secevent+jwt","alg":"ES256"}`,
		`{"format":"iss_sub","iss":"https://i","sub":"a"}`,
		`{"format":"complex","user":{"format":"email","email":"a@b"},"session":{"format":"opaque","id":"s"}}`,
		`{"format":"complex","user":{"format":"complex","user":{}}}`,
		`{"user":{"format":"opaque","id":"x"}}`,
		`{"format":"phone_number","phone_number":"+1"}`,
		`[]`, `null`, `{"format":1}`,
	} {
		f.Add([]byte(seed))
	}
	tr := &transmitter{Transmitter: Transmitter{Name: "t", IdP: "corp", Audience: "aud"}}
	r := &Receiver{transmitters: map[string]*transmitter{"https://i": tr}}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("refusal is not an *Error: %v", err)
			}
		}
		seg := base64.RawURLEncoding.EncodeToString(data)
		check(checkSETTyp(seg + ".x.y"))
		_, err := r.transmitterOf("x." + seg + ".y")
		check(err)
		var s subject
		check(parseSubject(json.RawMessage(data), "", &s, 0))
		c := setClaims{SubID: data, Events: map[string]json.RawMessage{EventSessionRevoked: data, EventDeviceComplianceChange: []byte(`{}`)}}
		_, err = parseEvents(&c, tr)
		check(err)
		_, err = checkSETClaims(&setClaims{Audience: data}, tr, nowForFuzz)
		check(err)
		_ = audienceHas(data, "aud")
	})
}

var nowForFuzz = mustTime()
