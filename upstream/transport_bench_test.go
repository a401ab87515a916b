package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// cannedUpstream answers every request with a fixed 1 KiB response and
// allocates nothing per request, so allocs/op are the client's.
func cannedUpstream(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n" + string(bytes.Repeat([]byte("x"), 1024)))
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					// Read one request head: up to the empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := conn.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/app/hello"
}

// BenchmarkUpstreamTransport compares the lean transport with a tuned
// http.Transport on the same keep-alive GET (1 KiB body), sequential and
// with 8 goroutines per CPU.
func BenchmarkUpstreamTransport(b *testing.B) {
	url := cannedUpstream(b)
	fb := func() *http.Transport {
		return &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second,
			DisableCompression: true, ResponseHeaderTimeout: 30 * time.Second}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name string
		rt   func() Transport
	}{
		{"lean", func() Transport { return newLeanTransport(fb(), d.DialContext) }},
		{"net-http", func() Transport { return fb() }},
	} {
		do := func(b *testing.B, rt http.RoundTripper, buf []byte) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("User-Agent", "bench")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			if n, _ := io.ReadFull(resp.Body, buf); n != 1024 {
				b.Fatalf("body %d bytes", n)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.Run(tc.name, func(b *testing.B) {
			rt := tc.rt()
			defer rt.CloseIdleConnections()
			buf := make([]byte, 1024)
			b.ReportAllocs()
			for b.Loop() {
				do(b, rt, buf)
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			rt := tc.rt()
			defer rt.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 1024)
				for pb.Next() {
					do(b, rt, buf)
				}
			})
		})
	}
}

// BenchmarkLeanIdleCheck is the cost of the check every reused
// connection gets before its request is written (issue 12.1): one
// non-blocking recv(MSG_PEEK) on an idle keep-alive connection.
func BenchmarkLeanIdleCheck(b *testing.B) {
	url := cannedUpstream(b)
	lt := newLeanTransport(&http.Transport{}, (&net.Dialer{Timeout: 5 * time.Second}).DialContext)
	defer lt.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := lt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c, err := lt.getConn(req.Context(), hostPort(req.URL.Host))
	if err != nil || !c.reused {
		b.Fatalf("no pooled connection: %v", err)
	}
	defer c.close()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.idleCheck(); err != nil {
			b.Fatal(err)
		}
	}
}
