package authn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"ztproxy/identity"
)

// memWebAuthnStore is an in-memory WebAuthnStore with the store's
// semantics.
type memWebAuthnStore struct {
	mu    sync.Mutex
	creds map[string][]WebAuthnCredential
}

func (s *memWebAuthnStore) PutCredential(_ context.Context, c WebAuthnCredential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creds == nil {
		s.creds = map[string][]WebAuthnCredential{}
	}
	for _, o := range s.creds[c.UserID] {
		if bytes.Equal(o.ID, c.ID) {
			return errors.New("exists")
		}
	}
	s.creds[c.UserID] = append(s.creds[c.UserID], c)
	return nil
}

func (s *memWebAuthnStore) ListCredentials(_ context.Context, userID string) ([]WebAuthnCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.creds[userID]), nil
}

func (s *memWebAuthnStore) DeleteCredential(_ context.Context, userID string, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.creds[userID])
	s.creds[userID] = slices.DeleteFunc(s.creds[userID], func(c WebAuthnCredential) bool { return bytes.Equal(c.ID, id) })
	if len(s.creds[userID]) == n {
		return ErrWebAuthnKeyNotFound
	}
	return nil
}

func (s *memWebAuthnStore) UpdateSignCount(_ context.Context, userID string, id []byte, n uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.creds[userID] {
		if bytes.Equal(c.ID, id) {
			if n <= c.SignCount && (n != 0 || c.SignCount != 0) {
				return errTestSignCount
			}
			s.creds[userID][i].SignCount = n
			s.creds[userID][i].LastUsed = time.Now()
			return nil
		}
	}
	return errors.New("not found")
}

// softAuthenticator is a minimal software authenticator: one ECDSA P-256
// credential, "none" attestation.
type softAuthenticator struct {
	priv   *ecdsa.PrivateKey
	id     []byte
	count  uint32
	step   uint32 // added to count per assertion; 0 for a counter-less key
	rpID   string
	origin string
	flags  byte
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func newSoftAuthenticator(t *testing.T) *softAuthenticator {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softAuthenticator{priv: priv, id: id, step: 1, rpID: testRPID, origin: testOrigin, flags: flagUP | flagUV}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (a *softAuthenticator) authData(attested bool) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	out := append([]byte{}, h[:]...)
	flags := a.flags
	if attested {
		flags |= flagAT
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, make([]byte, 16)...) // zero AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.id)))
		out = append(out, a.id...)
		pub, err := a.priv.PublicKey.ECDH()
		if err != nil {
			panic(err)
		}
		raw := pub.Bytes() // 0x04 || X || Y
		key, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
		if err != nil {
			panic(err)
		}
		out = append(out, key...)
	}
	return out
}

func (a *softAuthenticator) clientData(t *testing.T, typ string, options []byte) []byte {
	t.Helper()
	var opts struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(options, &opts); err != nil || opts.Challenge == "" {
		t.Fatalf("options without challenge: %v %s", err, options)
	}
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": opts.Challenge, "origin": a.origin, "crossOrigin": false})
	return cd
}

// create answers navigator.credentials.create.
func (a *softAuthenticator) create(t *testing.T, options []byte) []byte {
	t.Helper()
	cd := a.clientData(t, "webauthn.create", options)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(true)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64(a.id), "rawId": b64(a.id), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64(cd), "attestationObject": b64(att), "transports": []string{"usb"}},
		"clientExtensionResults": map[string]any{},
	})
	return body
}

// get answers navigator.credentials.get.
func (a *softAuthenticator) get(t *testing.T, options []byte) []byte {
	t.Helper()
	a.count += a.step
	cd := a.clientData(t, "webauthn.get", options)
	ad := a.authData(false)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(slices.Clone(ad), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64(a.id), "rawId": b64(a.id), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig)},
		"clientExtensionResults": map[string]any{},
	})
	return body
}

type webauthnFixture struct {
	w     *WebAuthn
	store *memWebAuthnStore
	now   time.Time
}

func newWebAuthnFixture(t *testing.T) *webauthnFixture {
	t.Helper()
	f := &webauthnFixture{store: &memWebAuthnStore{}, now: time.Now()}
	w, err := NewWebAuthn(WebAuthnConfig{
		RPID: testRPID, RPDisplayName: "Example", RPOrigins: []string{testOrigin},
		Store: f.store, Codec: newTestCodec(t, nil), Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatalf("NewWebAuthn: %v", err)
	}
	f.w = w
	return f
}

func testUser(name string) identity.Principal {
	return identity.Principal{
		Kind: identity.KindUser, ID: "https://idp.example.com#" + name, Email: name + "@example.com",
		Name: name, SessionID: "session-" + name,
	}
}

func finishRequest(body []byte, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/.ztp/stepup/finish", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func (f *webauthnFixture) register(t *testing.T, p identity.Principal, a *softAuthenticator) WebAuthnCredential {
	t.Helper()
	ctx := context.Background()
	opts, state, err := f.w.BeginRegistration(ctx, p)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	cred, err := f.w.FinishRegistration(ctx, p, finishRequest(a.create(t, opts), state))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return cred
}

// login runs a step-up ceremony and returns the request body and cookie so
// that tests can replay them.
func (f *webauthnFixture) login(t *testing.T, p identity.Principal, a *softAuthenticator) ([]byte, *http.Cookie, WebAuthnCredential, error) {
	t.Helper()
	opts, state, err := f.w.BeginLogin(context.Background(), p)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	body := a.get(t, opts)
	cred, err := f.w.FinishLogin(context.Background(), p, finishRequest(body, state))
	return body, state, cred, err
}
