package main

// Helper processes. The harness re-executes its own binary with
// ZTPBENCH_ROLE set so that the upstream, the bare Go reverse proxy and the
// Go load generator each run in their own process: their CPU time and RSS
// are then measurable from /proc like any other candidate's, and they do not
// share a Go runtime with the harness.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const roleEnv = "ZTPBENCH_ROLE"

// ResponseSize is the upstream's fixed body size (1 KiB), the same for every
// candidate.
const ResponseSize = 1024

// runRole runs the helper named by ZTPBENCH_ROLE and reports whether it did.
// Helpers print "READY" on stdout once they listen.
func runRole() bool {
	role := os.Getenv(roleEnv)
	if role == "" {
		return false
	}
	var err error
	switch role {
	case "upstream":
		err = roleUpstream(os.Args[1:])
	case "goproxy":
		err = roleGoProxy(os.Args[1:])
	case "loadgen":
		err = roleLoadgen(os.Args[1:])
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ztpbench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// roleUpstream serves a fixed 1 KiB body on every path.
func roleUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := bytes.Repeat([]byte("x"), ResponseSize-1)
	body = append(body, '\n')
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{"1024"}
		w.Write(body)
	})
	return serveReady(*addr, h)
}

// roleGoProxy is a bare httputil.ReverseProxy (Rewrite + SetURL) with the
// transport tuned as ztproxy's is (MaxIdleConnsPerHost raised); -default-transport
// uses http.DefaultTransport instead (2 idle connections per host).
func roleGoProxy(args []string) error {
	fs := flag.NewFlagSet("goproxy", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "upstream URL")
	defTransport := fs.Bool("default-transport", false, "use http.DefaultTransport")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil {
		return err
	}
	var rt http.RoundTripper = http.DefaultTransport
	if !*defTransport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 512
		rt = t
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: rt,
	}
	return serveReady(*addr, rp)
}

func serveReady(addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("READY %s\n", l.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(l)
}

// LoadResult is what the Go load generator reports (JSON on stdout).
type LoadResult struct {
	Requests  int64   `json:"requests"`
	Non2xx    int64   `json:"non2xx"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	ReqPerSec float64 `json:"req_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
	MaxMs     float64 `json:"max_ms"`
	// Rate is the fixed request rate of an open-loop run; 0 = closed loop.
	Rate     float64 `json:"rate,omitempty"`
	Threads  int     `json:"threads"`
	Conns    int     `json:"connections"`
	FirstBad string  `json:"first_bad,omitempty"`
}

// roleLoadgen is a closed-loop load generator like wrk (-c connections, each
// sending its next request when the previous response is read, keep-alive),
// for what wrk cannot do: TLS client certificates. GOMAXPROCS = -t.
func roleLoadgen(args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "URL")
	conns := fs.Int("c", 50, "connections")
	threads := fs.Int("t", 2, "threads (GOMAXPROCS)")
	dur := fs.Duration("d", 10*time.Second, "duration")
	ca := fs.String("ca", "", "CA bundle (PEM)")
	cert := fs.String("cert", "", "client certificate (PEM)")
	key := fs.String("key", "", "client key (PEM)")
	serverName := fs.String("server-name", "", "TLS server name")
	rate := fs.Float64("rate", 0, "open loop: requests per second on a fixed schedule (0 = closed loop)")
	var hdrs headerFlags
	fs.Var(&hdrs, "H", "header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads)
	tlsCfg := &tls.Config{ServerName: *serverName, MinVersion: tls.VersionTLS12}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsCfg.RootCAs = pool
	}
	if *cert != "" {
		c, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return err
		}
		tlsCfg.Certificates = []tls.Certificate{c}
	}
	header := http.Header{}
	for _, h := range hdrs {
		header.Add(h[0], h[1])
	}
	var res LoadResult
	if *rate > 0 {
		res = runFixedRate(*target, header, tlsCfg, *conns, *rate, *dur)
	} else {
		res = runLoad(*target, header, tlsCfg, *conns, *dur)
	}
	res.Threads = *threads
	return json.NewEncoder(os.Stdout).Encode(res)
}

type headerFlags [][2]string

func (h *headerFlags) String() string { return fmt.Sprint(*h) }
func (h *headerFlags) Set(s string) error {
	i := bytes.IndexByte([]byte(s), ':')
	if i < 0 {
		return fmt.Errorf("header %q: want Name: value", s)
	}
	*h = append(*h, [2]string{s[:i], string(bytes.TrimSpace([]byte(s[i+1:])))})
	return nil
}

func runLoad(target string, header http.Header, tlsCfg *tls.Config, conns int, dur time.Duration) LoadResult {
	var total, bad, errs atomic.Int64
	var firstBad atomic.Value
	var mu sync.Mutex
	var all []time.Duration
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One transport per connection: exactly `conns` keep-alive
			// connections, as wrk opens.
			tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			lat := make([]time.Duration, 0, 1<<14)
			buf := make([]byte, 32<<10)
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, target, nil)
				req.Header = header.Clone()
				t0 := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					errs.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				n := drainBody(resp.Body, buf)
				if (resp.StatusCode < 200 || resp.StatusCode > 299) && firstBad.Load() == nil {
					firstBad.Store(fmt.Sprintf("%s %v %.300s", resp.Status, resp.Header, buf[:n]))
				}
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				total.Add(1)
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					bad.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	r := LoadResult{Requests: total.Load(), Non2xx: bad.Load(), Errors: errs.Load(), Seconds: elapsed, Conns: conns}
	r.setPercentiles(all)
	if fb, ok := firstBad.Load().(string); ok {
		r.FirstBad = fb
	}
	if elapsed > 0 {
		r.ReqPerSec = float64(r.Requests) / elapsed
	}
	return r
}

// drainBody reads r to its end through buf without allocating and returns
// how many bytes of the last buffer-full are in buf (the body's tail, for
// error messages).
func drainBody(r io.Reader, buf []byte) int {
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if n == len(buf) {
			n = 0
		}
		if err != nil {
			return n
		}
	}
}
