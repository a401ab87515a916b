package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkSessionOpen(b *testing.B) {
	c := newTestCodec(b, nil)
	cookies := seal(b, c, typicalSession(10))
	r := requestWith(append([]*http.Cookie{{Name: "_ga", Value: "GA1.2.12345.67890"}}, cookies...)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(r, sessionTestNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionSeal(b *testing.B) {
	c := newTestCodec(b, nil)
	s := typicalSession(10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal(s, sessionTestNow); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzSessionOpen feeds arbitrary first and second chunks to Open. It must
// never panic, never yield a session and always fail with a typed error.
// The seeds are well-formed cookies sealed with another secret, so the
// fuzzer starts from realistic structure (version byte, chunk prefix,
// lengths) that nonetheless must never open.
func FuzzSessionOpen(f *testing.F) {
	c := newTestCodec(f, nil)
	other := newTestCodec(f, func(c *SessionCodecConfig) { c.Secrets = [][]byte{testSecret(2)} })
	for _, s := range []*Session{typicalSession(0), typicalSession(10)} {
		f.Add(seal(f, other, s)[0].Value, "")
	}
	chunked := seal(f, other, typicalSession(300))
	f.Add(chunked[0].Value, chunked[1].Value)
	f.Add("2.AAAA", "BBBB")
	f.Add("", "")
	f.Add("AQ", "")
	f.Add("\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", "")
	f.Fuzz(func(t *testing.T, first, second string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "_ztp="+first+"; _ztp_1="+second)
		s, err := c.Open(r, sessionTestNow)
		if err == nil || s != nil {
			t.Fatalf("forged cookie opened: %+v, %v", s, err)
		}
		if !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrInvalidSession) && !errors.Is(err, ErrExpiredSession) {
			t.Fatalf("untyped error %v", err)
		}
		c.Clear(r)
	})
}
