package authn

import (
	"net/http"
	"strings"
	"sync"
	"unsafe"
)

// maxRequestCookies bounds how many cookie pairs are scanned on one
// request, like net/http's own limit, so a header stuffed with thousands of
// tiny cookies costs bounded work.
const maxRequestCookies = 3000

// forEachRequestCookie calls yield with the name and value of each cookie
// in the request's Cookie headers, in order, until yield returns false.
// Unlike Request.Cookies it allocates nothing: names and values are
// substrings of the header. Values are taken verbatim (not even
// surrounding double quotes are removed, as this package never sets quoted
// values) and not validated, because every caller authenticates them.
func forEachRequestCookie(r *http.Request, yield func(name, value string) bool) {
	count := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = trimCookieSpace(part)
			if part == "" {
				continue
			}
			if count++; count > maxRequestCookies {
				return
			}
			name, value, _ := strings.Cut(part, "=")
			name, value = trimCookieSpace(name), trimCookieSpace(value)
			if !yield(name, value) {
				return
			}
		}
	}
}

// requestCookieValues appends to dst the values of the cookies named name,
// up to dst's capacity, so that a caller passing a stack array's slice
// allocates nothing.
func requestCookieValues(r *http.Request, name string, dst []string) []string {
	if cap(dst) == 0 {
		return dst
	}
	forEachRequestCookie(r, func(n, v string) bool {
		if n == name {
			dst = append(dst, v)
		}
		return len(dst) < cap(dst)
	})
	return dst
}

func trimCookieSpace(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// sessionCookie returns a cookie with the session cookies' attributes.
func (c *SessionCodec) sessionCookie(name, value string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   c.cfg.Domain,
		Secure:   !c.cfg.Insecure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// deletionCookie returns a cookie that makes the browser delete the cookie
// with this name, path and domain.
func (c *SessionCodec) deletionCookie(name, path, domain string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     path,
		Domain:   domain,
		MaxAge:   -1,
		Secure:   !c.cfg.Insecure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// openBuffers recycles the scratch space of Open (decoded ciphertext and
// plaintext), which is otherwise the largest allocation of the hot path.
var openBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer keeps unusually large buffers out of the pool.
const maxPooledBuffer = 64 << 10

func getOpenBuffer(n int) *[]byte {
	p := openBuffers.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	return p
}

// putOpenBuffer wipes the buffer, which held a decrypted session, before
// returning it to the pool.
func putOpenBuffer(p *[]byte) {
	if cap(*p) > maxPooledBuffer {
		return
	}
	clear(*p)
	openBuffers.Put(p)
}

// unsafeBytes views the bytes of s without copying. The result must only
// be read: base64 decoding reads its source and keeps no reference, and
// copying a multi-KiB cookie would be the largest allocation of Open.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
