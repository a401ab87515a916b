package authn

import (
	"encoding/binary"
	"errors"
	"time"

	"ztproxy/identity"
)

// The session payload is a compact binary record rather than JSON: it is
// about half the size for a typical principal, and decoding it costs a
// handful of allocations, which matters because every browser request
// opens one. Layout (all integers are varints, strings are a uvarint length
// followed by the bytes, times are signed Unix seconds with 0 for the zero
// time):
//
//	flags (uvarint: bit 0 email verified, bit 1 principal id = issuer#subject,
//	       bit 2 a username follows the times)
//	session id, kind, [principal id unless bit 1], issuer, subject, email,
//	name, acr, idp, device fingerprint
//	groups (uvarint count, then strings), amr (same)
//	issued at, expires at, last seen, id token expiry, auth time
//	[username if bit 2]
//
// Its version is the envelope's version byte, which is authenticated.

const (
	flagEmailVerified = 1 << iota
	flagDerivedID
	// flagUsername was added after the first layout: payloads without a
	// username keep the old bytes, so sessions survive an upgrade.
	flagUsername
)

// errMalformedPayload is the cause for any payload that does not decode;
// it never says more, so a decoder bug cannot become an oracle.
var errMalformedPayload = errors.New("malformed payload")

// appendSessionPayload encodes s onto dst.
func appendSessionPayload(dst []byte, s *Session) []byte {
	p := &s.Principal
	var flags uint64
	if p.EmailVerified {
		flags |= flagEmailVerified
	}
	derived := p.ID == identity.UserID(p.Issuer, p.Subject)
	if derived {
		flags |= flagDerivedID
	}
	if p.Username != "" {
		flags |= flagUsername
	}
	dst = binary.AppendUvarint(dst, flags)
	dst = appendString(dst, s.ID)
	dst = appendString(dst, string(p.Kind))
	if !derived {
		dst = appendString(dst, p.ID)
	}
	for _, v := range [...]string{p.Issuer, p.Subject, p.Email, p.Name, p.ACR, p.IdP, s.DeviceFingerprint} {
		dst = appendString(dst, v)
	}
	dst = appendStrings(dst, p.Groups)
	dst = appendStrings(dst, p.AMR)
	for _, t := range [...]time.Time{s.IssuedAt, s.ExpiresAt, s.LastSeen, s.IDTokenExpiry, p.AuthTime} {
		dst = appendTime(dst, t)
	}
	if p.Username != "" {
		dst = appendString(dst, p.Username)
	}
	return dst
}

// decodeSessionPayload decodes a payload produced by appendSessionPayload.
// All strings of the result share one allocation, a copy of plain, so plain
// may be reused as soon as it returns.
func decodeSessionPayload(plain []byte) (*Session, error) {
	r := payloadReader{buf: plain, str: string(plain)}
	s := new(Session)
	p := &s.Principal
	flags := r.uvarint()
	s.ID = r.string()
	p.Kind = identity.PrincipalKind(r.string())
	if flags&flagDerivedID == 0 {
		p.ID = r.string()
	}
	for _, v := range [...]*string{&p.Issuer, &p.Subject, &p.Email, &p.Name, &p.ACR, &p.IdP, &s.DeviceFingerprint} {
		*v = r.string()
	}
	p.Groups = r.strings()
	p.AMR = r.strings()
	for _, t := range [...]*time.Time{&s.IssuedAt, &s.ExpiresAt, &s.LastSeen, &s.IDTokenExpiry, &p.AuthTime} {
		*t = r.time()
	}
	if flags&flagUsername != 0 {
		if p.Username = r.string(); p.Username == "" {
			r.bad = true // the flag promises a username
		}
	}
	if r.bad || r.off != len(r.buf) || flags > flagEmailVerified|flagDerivedID|flagUsername {
		return nil, errMalformedPayload
	}
	p.EmailVerified = flags&flagEmailVerified != 0
	if flags&flagDerivedID != 0 {
		p.ID = identity.UserID(p.Issuer, p.Subject)
	}
	return s, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendStrings(dst []byte, list []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(list)))
	for _, s := range list {
		dst = appendString(dst, s)
	}
	return dst
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.Unix())
}

// payloadReader decodes varints from buf and slices strings out of str,
// which holds the same bytes, so that strings cost no allocation each.
// After the first error it sets bad and returns zero values.
type payloadReader struct {
	buf []byte
	str string
	off int
	bad bool
}

func (r *payloadReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *payloadReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.buf[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *payloadReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.buf)-r.off) {
		r.bad = true
		return ""
	}
	s := r.str[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

// strings reads a counted list. The count is checked against the bytes
// left (each element needs at least one) before allocating, so a forged
// count cannot trigger a huge allocation.
func (r *payloadReader) strings() []string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.buf)-r.off) {
		r.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	list := make([]string, n)
	for i := range list {
		list[i] = r.string()
	}
	return list
}

func (r *payloadReader) time() time.Time {
	sec := r.varint()
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
