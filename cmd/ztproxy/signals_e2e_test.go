package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// setTransmitter is a test SET transmitter: its JWKS on a real HTTP
// server, SETs built and signed with go-jose.
type setTransmitter struct {
	issuer string
	key    *ecdsa.PrivateKey
	jwks   *httptest.Server
	jti    atomic.Int64
}

func newSETTransmitter(t *testing.T) *setTransmitter {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tr := &setTransmitter{issuer: "https://ssf.transmitter.test", key: key}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "t1", Algorithm: "ES256", Use: "sig"}}}
	tr.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(tr.jwks.Close)
	return tr
}

// sign builds a SET with go-jose, signed with key (the transmitter's when
// nil), typ secevent+jwt unless typ is given.
func (tr *setTransmitter) sign(t *testing.T, claims map[string]any, key *ecdsa.PrivateKey, typ string) string {
	if key == nil {
		key = tr.key
	}
	if typ == "" {
		typ = "secevent+jwt"
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "t1")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// claims is a SET of one event about subject, for audience aud.
func (tr *setTransmitter) claims(aud, event string, subject any, extra map[string]any) map[string]any {
	ev := map[string]any{"event_timestamp": time.Now().Unix()}
	for k, v := range extra {
		ev[k] = v
	}
	return map[string]any{
		"iss": tr.issuer, "aud": aud, "iat": time.Now().Unix(), "jti": fmt.Sprintf("jti-%d-%d", time.Now().UnixNano(), tr.jti.Add(1)),
		"sub_id": subject, "events": map[string]any{event: ev},
	}
}

// push POSTs a SET to the replica and returns the status and RFC 8935
// error code.
func push(t *testing.T, c *http.Client, pub, contentType, body string) (int, string) {
	req, _ := http.NewRequest("POST", "https://"+pub+"/.ztp/security-events", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Err string `json:"err"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &e)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("SET answer Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, e.Err
}

const (
	caepEvent = "https://schemas.openid.net/secevent/caep/event-type/"
	riscEvent = "https://schemas.openid.net/secevent/risc/event-type/"
)

// TestSecurityEventsPushedToReplicas: issue 17, nothing outside the proxy
// could end a session or block a user. SETs built with go-jose are pushed
// to the real binary (replica B) and take effect on both replicas sharing
// dynalite within a second; every malformed, forged, misaddressed or
// replayed SET is refused with its RFC 8935 code and changes nothing.
func TestSecurityEventsPushedToReplicas(t *testing.T) {
	tr := newSETTransmitter(t)
	k := newKillSwitchEnvWith(t, false, fmt.Sprintf(`security_events:
  transmitters:
    - {name: guard, issuer: %q, jwks_url: %q, idp: corp}
`, tr.issuer, tr.jwks.URL))
	c := tlsClient(t, k.certDir, false)
	aud := k.env.base
	user := func(sub string) map[string]any {
		return map[string]any{"format": "iss_sub", "iss": k.op.Issuer, "sub": sub}
	}
	send := func(t *testing.T, claims map[string]any) {
		t.Helper()
		if st, code := push(t, c, k.pubB, "application/secevent+jwt", tr.sign(t, claims, nil, "")); st != http.StatusAccepted {
			t.Fatalf("SET refused: %d %s", st, code)
		}
	}
	token := func(sub string) string {
		return "Bearer " + k.op.CodeFlowTokens(t, k.op.Client(t, "ztproxy"), k.op.User(t, sub), "", false).IDToken
	}
	both := []string{k.pubA, k.pubB}
	sessionGone := func(cookie string) func(string) bool {
		return func(pub string) bool { return k.status(t, c, pub, "/app/x", cookie, "") == http.StatusFound }
	}
	bobTok := token("bob")

	t.Run("malformed, forged, misaddressed and replayed SETs are refused", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		good := tr.claims(aud, riscEvent+"account-disabled", user("bob"), nil)
		wrongAud := tr.claims("https://someone-else.test", riscEvent+"account-disabled", user("bob"), nil)
		wrongIss := tr.claims(aud, riscEvent+"account-disabled", user("bob"), nil)
		wrongIss["iss"] = "https://evil.test"
		badSubject := tr.claims(aud, riscEvent+"account-disabled", map[string]any{"format": "phone_number", "phone_number": "+1"}, nil)
		noIat := tr.claims(aud, riscEvent+"account-disabled", user("bob"), nil)
		delete(noIat, "iat")
		for _, tc := range []struct {
			name, contentType, body, code string
		}{
			{"bad signature", "application/secevent+jwt", tr.sign(t, good, other, ""), "invalid_key"},
			{"wrong audience", "application/secevent+jwt", tr.sign(t, wrongAud, nil, ""), "invalid_audience"},
			{"unknown issuer", "application/secevent+jwt", tr.sign(t, wrongIss, nil, ""), "invalid_issuer"},
			{"unknown subject format", "application/secevent+jwt", tr.sign(t, badSubject, nil, ""), "invalid_request"},
			{"not typed secevent+jwt", "application/secevent+jwt", tr.sign(t, good, nil, "JWT"), "invalid_request"},
			{"no iat", "application/secevent+jwt", tr.sign(t, noIat, nil, ""), "invalid_request"},
			{"wrong content type", "application/json", tr.sign(t, good, nil, ""), "invalid_request"},
			{"oversized body", "application/secevent+jwt", strings.Repeat("a", 70<<10), "invalid_request"},
			{"not a JWT", "application/secevent+jwt", "hello", "invalid_request"},
		} {
			if st, code := push(t, c, k.pubB, tc.contentType, tc.body); st != http.StatusBadRequest || code != tc.code {
				t.Errorf("%s: %d %q, want 400 %q", tc.name, st, code, tc.code)
			}
		}
		once := tr.sign(t, tr.claims(aud, caepEvent+"future-event-type", user("bob"), nil), nil, "")
		if st, _ := push(t, c, k.pubB, "application/secevent+jwt", once); st != http.StatusAccepted {
			t.Fatalf("unknown event type: %d, want 202 (acknowledged)", st)
		}
		if st, code := push(t, c, k.pubA, "application/secevent+jwt", once); st != http.StatusBadRequest || code != "invalid_request" {
			t.Errorf("replayed jti on the other replica: %d %q", st, code)
		}
		time.Sleep(500 * time.Millisecond)
		for _, pub := range both {
			if st := k.status(t, c, pub, "/api/x", "", bobTok); st != 200 {
				t.Errorf("bob after refused SETs on %s: %d", pub, st)
			}
		}
	})
	t.Run("RISC sessions-revoked and CAEP session-revoked end sessions", func(t *testing.T) {
		for _, ev := range []string{riscEvent + "sessions-revoked", caepEvent + "session-revoked", caepEvent + "token-claims-change"} {
			cookie := k.signIn(t, "alice")
			send(t, tr.claims(aud, ev, user("alice"), nil))
			took := within(t, time.Second, shortName(ev), sessionGone(cookie), both...)
			t.Logf("%s: session refused on both replicas after %s", shortName(ev), took)
		}
	})
	t.Run("RISC account-disabled blocks, account-enabled unblocks", func(t *testing.T) {
		cookie := k.signIn(t, "bob")
		send(t, tr.claims(aud, riscEvent+"account-disabled", map[string]any{"format": "opaque", "id": k.op.Issuer + "#bob"}, nil))
		within(t, time.Second, "bob blocked", func(pub string) bool {
			return k.status(t, c, pub, "/api/x", "", bobTok) == http.StatusForbidden
		}, both...)
		within(t, time.Second, "bob's session ended", sessionGone(cookie), both...)
		send(t, tr.claims(aud, riscEvent+"account-enabled", user("bob"), nil))
		within(t, time.Second, "bob unblocked", func(pub string) bool {
			return k.status(t, c, pub, "/api/x", "", bobTok) == 200
		}, both...)
	})
	t.Run("RISC credential-compromise and account-purged block", func(t *testing.T) {
		for _, ev := range []string{riscEvent + "credential-compromise", riscEvent + "account-purged"} {
			send(t, tr.claims(aud, ev, user("bob"), nil))
			within(t, time.Second, shortName(ev), func(pub string) bool {
				return k.status(t, c, pub, "/api/x", "", bobTok) == http.StatusForbidden
			}, both...)
			send(t, tr.claims(aud, riscEvent+"account-enabled", user("bob"), nil))
			within(t, time.Second, "cleared", func(pub string) bool { return k.status(t, c, pub, "/api/x", "", bobTok) == 200 }, both...)
		}
	})
	t.Run("CAEP credential-change and assurance-level-change force a step-up", func(t *testing.T) {
		for _, ev := range []string{caepEvent + "credential-change", caepEvent + "assurance-level-change"} {
			tok := token("alice")
			if st := k.status(t, c, k.pubA, "/api/x", "", tok); st != 200 {
				t.Fatalf("before: %d", st)
			}
			time.Sleep(1100 * time.Millisecond) // the event is newer than the token's auth_time
			send(t, tr.claims(aud, ev, user("alice"), map[string]any{"change_type": "update", "credential_type": "password"}))
			within(t, time.Second, shortName(ev), func(pub string) bool {
				return k.status(t, c, pub, "/api/x", "", tok) == http.StatusUnauthorized
			}, both...)
			time.Sleep(1100 * time.Millisecond)
			if st := k.status(t, c, k.pubB, "/api/x", "", token("alice")); st != 200 {
				t.Errorf("a fresh authentication after %s: %d", shortName(ev), st)
			}
		}
	})
	t.Run("CAEP device-compliance-change for an unknown device is acknowledged", func(t *testing.T) {
		send(t, tr.claims(aud, caepEvent+"device-compliance-change",
			map[string]any{"format": "complex", "device": map[string]any{"format": "opaque", "id": "dev-unknown"}},
			map[string]any{"previous_status": "compliant", "current_status": "not-compliant"}))
		bad := tr.claims(aud, caepEvent+"device-compliance-change",
			map[string]any{"format": "complex", "device": map[string]any{"format": "opaque", "id": "dev-unknown"}},
			map[string]any{"current_status": "maybe"})
		if st, code := push(t, c, k.pubB, "application/secevent+jwt", tr.sign(t, bad, nil, "")); st != 400 || code != "invalid_request" {
			t.Errorf("bad current_status: %d %s", st, code)
		}
	})
}

func shortName(ev string) string { return ev[strings.LastIndex(ev, "/")+1:] }
