package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzLogoutToken feeds attacker bytes to what reads a logout token
// around its signature check: the header's typ, and the claims checks.
// They may refuse, never panic, and a refusal is a *BackchannelError.
func FuzzLogoutToken(f *testing.F) {
	for _, seed := range []string{
		`{"typ":"logout+jwt","alg":"RS256"}`,
		`{"iat":1800000000,"jti":"j","sid":"s","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`,
		`{"iat":"x","events":{"http://schemas.openid.net/event/backchannel-logout":[]}}`,
		`{"iat":1800000000,"exp":1,"nonce":null}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		var be *BackchannelError
		if err := checkLogoutTyp(base64.RawURLEncoding.EncodeToString(data) + ".x.y"); err != nil && !errors.As(err, &be) {
			t.Fatalf("typ refusal is not a *BackchannelError: %v", err)
		}
		var c logoutClaims
		dec := json.NewDecoder(bytesReader(data))
		dec.UseNumber()
		if dec.Decode(&c) != nil {
			return
		}
		if _, err := checkLogoutClaims(c, now); err != nil && !errors.As(err, &be) {
			t.Fatalf("claims refusal is not a *BackchannelError: %v", err)
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
