package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// TestMain lets the harness re-execute the test binary as its helper
// processes (upstream, bare Go proxy, load generator).
func TestMain(m *testing.M) {
	if runRole() {
		return
	}
	os.Exit(m.Run())
}

// TestShortBenchmark runs the whole harness in -short mode (2 s per
// candidate, one round) so that it never rots: every available candidate
// must be measured and answer only 2xx (run fails on any non-2xx).
// oauth2-proxy is measured when it is already in the cache dir; installing it
// is left to `go run ./bench`.
func TestShortBenchmark(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("go test -short: skipping the end-to-end benchmark smoke run (never skipped under CI=true)")
	}
	for _, c := range []struct{ name, path string }{{"wrk", "/usr/bin/wrk"}, {"nginx", "/usr/sbin/nginx"}, {"node", "/usr/bin/node"}} {
		_, err := findBin(c.name, c.path)
		testenv.RequireComponent(t, c.name, err)
	}
	repo := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(repo, "internal", "testenv", "oidcprovider", "node_modules", "oidc-provider")); err != nil {
		testenv.RequireComponent(t, "npm oidc-provider (internal/testenv/oidcprovider/node_modules)", err)
	}
	_, err := exec.LookPath("go")
	testenv.RequireComponent(t, "go tool", err)
	out := t.TempDir()
	start := time.Now()
	rep, err := run(options{
		short: true, duration: 2 * time.Second, rounds: 1, connections: 50, threads: 2,
		out: out, repo: repo, sessionBudget: 2 * time.Second,
		logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("benchmark harness: %v", err)
	}
	t.Logf("short benchmark took %v\n%s", time.Since(start).Round(time.Millisecond), rep.Markdown)

	want := []string{"direct", "nginx", "go-rp", "oauth2-proxy", "ztproxy-browser", "ztproxy-pool3", "ztproxy-bearer",
		"ztproxy-trace1", "ztproxy-trace100", "nginx-mtls", "ztproxy-mtls"}
	got := map[string]*Candidate{}
	for _, c := range rep.Candidates {
		got[c.Name] = c
	}
	for _, name := range want {
		c := got[name]
		if c == nil {
			t.Errorf("candidate %s missing from the report", name)
			continue
		}
		if c.Unavailable != "" {
			if name != "oauth2-proxy" {
				t.Errorf("%s unavailable: %s", name, c.Unavailable)
			} else {
				t.Logf("note: %s", c.Unavailable)
			}
			if !strings.Contains(rep.Markdown, "| "+name+" | "+c.Tool+" | unavailable") {
				t.Errorf("table does not mark %s unavailable", name)
			}
			continue
		}
		if len(c.Runs) != 1 {
			t.Errorf("%s: %d runs, want 1", name, len(c.Runs))
			continue
		}
		r := c.Runs[0]
		if r.Non2xx != 0 || r.Requests == 0 || r.ReqPerSec <= 0 || r.P99Ms <= 0 {
			t.Errorf("%s: %+v", name, r)
		}
		if !strings.Contains(rep.Markdown, "| "+name+" | "+c.Tool+" | ") {
			t.Errorf("table has no row for %s", name)
		}
		if _, err := os.Stat(filepath.Join(out, r.Raw)); err != nil {
			t.Errorf("%s: raw output: %v", name, err)
		}
	}
	// Issue 19: tracing at 100 % really exported spans to the sink.
	if te := rep.TraceExports["ztproxy-trace100"]; te.Requests == 0 || te.Bytes == 0 {
		t.Errorf("ztproxy-trace100 exported nothing to the OTLP sink: %+v", te)
	}
	for _, f := range []string{"results.md", "results.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if f := rep.FixedRate; f == nil {
		t.Error("no fixed-rate (half of peak) measurement")
	} else {
		for _, name := range fixedRateNames {
			s := f.stats(name)
			if s == nil || s.P99Ms <= 0 || s.Achieved < 0.8*f.Rate {
				t.Errorf("fixed rate %.0f req/s: %s: %+v", f.Rate, name, s)
			}
		}
		if zb := f.stats("ztproxy-browser"); zb != nil && !zb.DirectPresent {
			t.Error("no p99 added over direct")
		}
		if !strings.Contains(rep.Markdown, "p99 added over direct ≤ 1 ms at half of peak load") {
			t.Error("table lacks the added-latency target")
		}
	}
	if rep.Ready == nil || rep.Ready.Median <= 0 {
		t.Errorf("no ready-time measurement: %v", rep.Notes)
	}
	if rep.Sessions == nil || rep.Sessions.Sessions == 0 {
		t.Errorf("no session RSS measurement: %v", rep.Notes)
	}
}

func TestParseWrk(t *testing.T) {
	const out = `Running 2s test @ http://127.0.0.1:1/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  500.00us  20.00ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.80ms
     99%    1.02s
  12345 requests in 2.00s, 13.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   6172.50
Transfer/sec:      6.50MB
BENCH_NON2XX 7
`
	var r RunResult
	if err := parseWrk(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.ReqPerSec != 6172.5 || r.P50Ms != 0.85 || r.P99Ms != 1020 || r.Requests != 12345 || r.Non2xx != 7 || r.SocketErrors != 5 {
		t.Fatalf("%+v", r)
	}
	if err := parseWrk("Requests/sec: 1\n", &r); !errors.Is(err, errNoLatency) {
		t.Fatalf("missing latency: %v", err)
	}
}
