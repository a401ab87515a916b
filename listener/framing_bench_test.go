package listener

import "testing"

// BenchmarkFramingWatch is the watch's cost for a typical browser request
// head (about 600 bytes), the work added to every HTTP/1 request.
func BenchmarkFramingWatch(b *testing.B) {
	head := []byte("GET /app/items?page=2 HTTP/1.1\r\nHost: app.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\nCookie: _ztp_session=" + string(make([]byte, 200)) + "\r\n" +
		"Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\nConnection: keep-alive\r\n\r\n")
	w := newFramingWatch()
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		w.feed(head)
	}
}
