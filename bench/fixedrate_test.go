package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestFixedRateCountsQueueing checks that latency is measured from the
// intended send time: one 300 ms stall on a single connection at 100 req/s
// delays the ~30 requests scheduled behind it, and they must count as slow
// (a closed-loop tool would report one slow request; coordinated omission).
func TestFixedRateCountsQueueing(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 11 { // 1 warm-up request + the 10th scheduled one
			time.Sleep(300 * time.Millisecond)
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	res := runFixedRate(srv.URL, http.Header{}, nil, 1, 100, time.Second)
	if res.Requests != 100 || res.Non2xx != 0 || res.Errors != 0 {
		t.Fatalf("requests %d, non-2xx %d, errors %d; want 100, 0, 0", res.Requests, res.Non2xx, res.Errors)
	}
	if res.P50Ms > 50 {
		t.Errorf("p50 %.2f ms: the requests before the stall and after the catch-up were slow", res.P50Ms)
	}
	if res.P90Ms < 50 {
		t.Errorf("p90 %.2f ms: requests queued behind the stall were not counted from their intended send time", res.P90Ms)
	}
	if res.ReqPerSec < 80 || res.ReqPerSec > 110 {
		t.Errorf("achieved %.0f req/s, want about 100", res.ReqPerSec)
	}
}

func TestFixedRateReportsNon2xx(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "denied", http.StatusForbidden)
	}))
	defer srv.Close()
	res := runFixedRate(srv.URL, http.Header{}, nil, 2, 200, 200*time.Millisecond)
	if res.Non2xx != res.Requests || res.Requests == 0 || res.FirstBad == "" {
		t.Fatalf("%+v", res)
	}
}

func TestFixedRateSummary(t *testing.T) {
	f := &FixedRate{Runs: []FixedRateRun{
		{Name: "direct", Load: LoadResult{P50Ms: 0.3, P99Ms: 1.0, ReqPerSec: 100}},
		{Name: "direct", Load: LoadResult{P50Ms: 0.5, P99Ms: 3.0, ReqPerSec: 100}},
		{Name: "direct", Load: LoadResult{P50Ms: 0.4, P99Ms: 2.0, ReqPerSec: 100}},
		{Name: "ztproxy-browser", Load: LoadResult{P50Ms: 0.9, P99Ms: 2.5, ReqPerSec: 99}},
	}}
	f.summarize(fixedRateNames)
	zb := f.stats("ztproxy-browser")
	if zb == nil || !zb.DirectPresent || zb.P99AddedMs != 0.5 || zb.P50AddedMs < 0.49 || zb.P50AddedMs > 0.51 {
		t.Fatalf("%+v", f.Summary)
	}
	if f.stats("nginx") != nil {
		t.Error("nginx has a row without runs")
	}
}
