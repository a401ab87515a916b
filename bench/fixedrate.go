package main

// Fixed-rate (open-loop) load: the added-latency target of issue 8 is
// "p99 added over direct ≤ 1 ms at half of peak load". wrk and the
// closed-loop loadgen send the next request only when the previous one has
// answered, so a slow response delays every request behind it and is
// counted once (coordinated omission), and at full load p99 is queueing.
// Here requests follow a fixed schedule and each latency is measured from
// the time the request was *meant* to be sent, as wrk2 does.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runFixedRate sends rate requests per second for dur over conns keep-alive
// connections. Connection k owns the requests k, k+conns, k+2·conns, … of
// the global schedule start + i/rate, so the connections together keep the
// total rate. A connection that falls behind sends its next request at once;
// the time it was late counts in that request's latency. Each connection
// first sends one untimed request, so dials are not measured.
func runFixedRate(target string, header http.Header, tlsCfg *tls.Config, conns int, rate float64, dur time.Duration) LoadResult {
	var total, bad, errs atomic.Int64
	var firstBad atomic.Value
	var mu sync.Mutex
	var all []time.Duration
	interval := time.Duration(float64(time.Second) / rate)
	perConn := int(rate*dur.Seconds()) / conns
	clients := make([]*http.Client, conns)
	var warm sync.WaitGroup
	for k := range clients {
		tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), MaxIdleConnsPerHost: 1, DisableCompression: true}
		clients[k] = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		warm.Add(1)
		go func(c *http.Client) {
			defer warm.Done()
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			req.Header = header.Clone()
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(clients[k])
	}
	warm.Wait()
	start := time.Now().Add(10 * time.Millisecond)
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Transport.(*http.Transport).CloseIdleConnections()
			lat := make([]time.Duration, 0, perConn)
			buf := make([]byte, 32<<10)
			for j := 0; j < perConn; j++ {
				intended := start.Add(time.Duration(k+j*conns) * interval)
				if d := time.Until(intended); d > 0 {
					time.Sleep(d)
				}
				req, _ := http.NewRequest(http.MethodGet, target, nil)
				req.Header = header.Clone()
				resp, err := c.Do(req)
				if err != nil {
					errs.Add(1)
					if firstBad.Load() == nil {
						firstBad.Store("transport error: " + err.Error())
					}
					continue
				}
				n := drainBody(resp.Body, buf)
				resp.Body.Close()
				lat = append(lat, time.Since(intended))
				total.Add(1)
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					bad.Add(1)
					if firstBad.Load() == nil {
						firstBad.Store(fmt.Sprintf("%s %v %.300s", resp.Status, resp.Header, buf[:n]))
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	r := LoadResult{Requests: total.Load(), Non2xx: bad.Load(), Errors: errs.Load(), Seconds: elapsed, Conns: conns, Rate: rate}
	r.setPercentiles(all)
	if fb, ok := firstBad.Load().(string); ok {
		r.FirstBad = fb
	}
	if elapsed > 0 {
		r.ReqPerSec = float64(r.Requests) / elapsed
	}
	return r
}

// setPercentiles sorts lat and sets the exact (nearest-rank) percentiles.
func (r *LoadResult) setPercentiles(lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms, r.MaxMs = pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1)
}

// FixedRate is the open-loop section of the report: direct, ztproxy and
// nginx at half of ztproxy-browser's measured peak.
type FixedRate struct {
	// Layout names where the load generator, the upstream and the
	// candidates ran (shared or isolated).
	Layout   string           `json:"layout"`
	Rate     float64          `json:"rate"`
	Basis    string           `json:"basis"`
	Duration string           `json:"duration"`
	Conns    int              `json:"connections"`
	Runs     []FixedRateRun   `json:"runs"`
	Summary  []FixedRateStats `json:"summary"`
}

// FixedRateRun is one candidate's run at the fixed rate.
type FixedRateRun struct {
	Name  string     `json:"name"`
	Round int        `json:"round"`
	Load  LoadResult `json:"load"`
	Raw   string     `json:"raw"`
	// CPUPerReqUs is the candidate's own CPU time per request.
	CPUPerReqUs float64 `json:"cpu_us_per_req"`
}

// FixedRateStats are the medians over rounds for one candidate.
type FixedRateStats struct {
	Name          string  `json:"name"`
	Achieved      float64 `json:"achieved_req_per_sec"`
	CPUPerReqUs   float64 `json:"cpu_us_per_req"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	P99AddedMs    float64 `json:"p99_added_over_direct_ms"`
	P50AddedMs    float64 `json:"p50_added_over_direct_ms"`
	DirectPresent bool    `json:"-"`
}

// summarize computes the per-candidate medians and the added latency over
// direct.
func (f *FixedRate) summarize(names []string) {
	f.Summary = nil
	for _, name := range names {
		var ach, p50, p99, p999, cpu []float64
		for _, r := range f.Runs {
			if r.Name == name {
				ach = append(ach, r.Load.ReqPerSec)
				p50 = append(p50, r.Load.P50Ms)
				p99 = append(p99, r.Load.P99Ms)
				p999 = append(p999, r.Load.P999Ms)
				cpu = append(cpu, r.CPUPerReqUs)
			}
		}
		if len(ach) == 0 {
			continue
		}
		f.Summary = append(f.Summary, FixedRateStats{Name: name, Achieved: median(ach), CPUPerReqUs: median(cpu), P50Ms: median(p50), P99Ms: median(p99), P999Ms: median(p999)})
	}
	var direct *FixedRateStats
	for i := range f.Summary {
		if f.Summary[i].Name == "direct" {
			direct = &f.Summary[i]
		}
	}
	if direct == nil {
		return
	}
	for i := range f.Summary {
		s := &f.Summary[i]
		s.DirectPresent = true
		s.P99AddedMs = s.P99Ms - direct.P99Ms
		s.P50AddedMs = s.P50Ms - direct.P50Ms
	}
}

// stats returns the summary row of name, or nil.
func (f *FixedRate) stats(name string) *FixedRateStats {
	for i := range f.Summary {
		if f.Summary[i].Name == name {
			return &f.Summary[i]
		}
	}
	return nil
}

// fixedRateNames are measured at the fixed rate, in this interleaved order.
var fixedRateNames = []string{"direct", "ztproxy-browser", "nginx"}

// fixedRatePhase runs names (direct, ztproxy-browser and nginx by default)
// at half of ztproxy-browser's measured peak (median req/s of the
// throughput rounds), interleaved over the same number of rounds, with the
// Go load generator in open-loop mode. Any non-2xx response or transport
// error fails the run. layout labels the result.
func (e *env) fixedRatePhase(cands []*Candidate, names []string, layout string) (*FixedRate, error) {
	zb := find(cands, "ztproxy-browser")
	if zb == nil {
		return nil, fmt.Errorf("fixed rate: ztproxy-browser was not measured")
	}
	d := e.o.duration
	frac := e.o.rateFraction
	if frac <= 0 {
		frac = 0.5
	}
	f := &FixedRate{Layout: layout, Rate: float64(int(zb.RPS() * frac)), Conns: e.o.connections, Duration: d.String(),
		Basis: fmt.Sprintf("%.2f × ztproxy-browser's median peak %.0f req/s", frac, zb.RPS())}
	if find(cands, "ztproxy-alt") != nil {
		names = append(names[:len(names):len(names)], "ztproxy-alt")
	}
	for round := 1; round <= e.o.rounds; round++ {
		for _, name := range names {
			c := find(cands, name)
			if c == nil {
				continue
			}
			tag := fmt.Sprintf("%s%s-fixedrate-round%d", name, c.tagSuffix(), round)
			args := []string{"-url", c.URL, "-c", fmt.Sprint(e.o.connections), "-t", fmt.Sprint(e.loadThreads(c)), "-d", d.String(),
				"-rate", fmt.Sprint(f.Rate), "-H", "User-Agent: " + benchUA}
			for k, v := range c.headers {
				args = append(args, "-H", k+": "+v)
			}
			var before procStat
			if c.pids != nil {
				before, _ = readProcStat(c.pids())
			}
			lr, raw, err := e.loadgen(c, tag, d, args)
			if err != nil {
				return f, err
			}
			cpu := 0.0
			if after, err := readProcStat(c.pids()); err == nil && c.pids != nil && lr.Requests > 0 {
				cpu = float64((after.cpu - before.cpu).Microseconds()) / float64(lr.Requests)
			}
			if lr.Non2xx > 0 || lr.Errors > 0 {
				return f, fmt.Errorf("%s at %.0f req/s: %d non-2xx and %d transport errors of %d (first: %s; see %s) — refusing to report latency of an error path",
					name, f.Rate, lr.Non2xx, lr.Errors, lr.Requests, lr.FirstBad, raw)
			}
			rel, _ := filepath.Rel(e.o.out, raw)
			f.Runs = append(f.Runs, FixedRateRun{Name: name, Round: round, Load: lr, Raw: rel, CPUPerReqUs: cpu})
			e.o.logf("fixed rate %.0f req/s, round %d %-16s achieved %8.0f  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  cpu %.1f µs/req",
				f.Rate, round, name+c.tagSuffix(), lr.ReqPerSec, lr.P50Ms, lr.P99Ms, lr.P999Ms, cpu)
		}
	}
	f.summarize(names)
	return f, nil
}
