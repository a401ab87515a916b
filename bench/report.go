package main

import (
	"fmt"
	"sort"
	"strings"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (c *Candidate) series(f func(RunResult) float64) []float64 {
	var xs []float64
	for _, r := range c.Runs {
		xs = append(xs, f(r))
	}
	return xs
}

// RPS is the median req/s across rounds.
func (c *Candidate) RPS() float64 {
	return median(c.series(func(r RunResult) float64 { return r.ReqPerSec }))
}

func find(cs []*Candidate, name string) *Candidate {
	for _, c := range cs {
		if c.Name == name && c.Unavailable == "" && len(c.Runs) > 0 {
			return c
		}
	}
	return nil
}

func markdown(rep *Report) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s, %s; %s; %s\n\n", m.CPUs, m.Model, m.Kernel, m.GoVersion, m.Wrk, m.Nginx)
	fmt.Fprintf(&b, "Settings: %s. Response: %d B body from one Go upstream.\n\n", rep.Settings, ResponseSize)
	fmt.Fprintf(&b, "Layout: %s.\n\n", rep.Layout)
	b.WriteString("| # | candidate | tool | req/s (median) | min–max | p50 ms | p99 ms | CPU µs/req | peak RSS MB | × go-rp | × oauth2-proxy |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	gp, o2 := find(rep.Candidates, "go-rp"), find(rep.Candidates, "oauth2-proxy")
	for i, c := range rep.Candidates {
		if c.Unavailable != "" || len(c.Runs) == 0 {
			why := c.Unavailable
			if why == "" {
				why = "not measured"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | unavailable: %s | | | | | | | |\n", i+1, c.Name, c.Tool, strings.ReplaceAll(why, "|", "/"))
			continue
		}
		rps := c.series(func(r RunResult) float64 { return r.ReqPerSec })
		lo, hi := rps[0], rps[0]
		for _, x := range rps {
			lo, hi = min(lo, x), max(hi, x)
		}
		ratio := func(base *Candidate) string {
			if base == nil {
				return "–"
			}
			return fmt.Sprintf("%.2f", c.RPS()/base.RPS())
		}
		cpu := median(c.series(func(r RunResult) float64 { return r.CPUPerReqUs }))
		fmt.Fprintf(&b, "| %d | %s | %s | %.0f | %.0f–%.0f | %.2f | %.2f | %.1f | %.1f | %s | %s |\n", i+1, c.Name, c.Tool, c.RPS(), lo, hi,
			median(c.series(func(r RunResult) float64 { return r.P50Ms })), median(c.series(func(r RunResult) float64 { return r.P99Ms })),
			cpu, float64(c.PeakRSSKB)/1024, ratio(gp), ratio(o2))
	}
	b.WriteString("\nCandidates:\n\n")
	for _, c := range rep.Candidates {
		note := ""
		if c.RSSNote != "" {
			note = " (RSS: " + c.RSSNote + ")"
		}
		fmt.Fprintf(&b, "- `%s`: %s%s\n", c.Name, c.Desc, note)
	}
	b.WriteString("\nCPU µs/req is the candidate's own server processes (utime+stime from /proc, not the upstream or the load tool) divided by the requests of that run. Peak RSS is VmHWM after all rounds.\n")
	if zb, ng := find(rep.Candidates, "ztproxy-browser"), find(rep.Candidates, "nginx"); zb != nil {
		b.WriteString("\nTargets (issue 8):\n\n")
		if gp != nil {
			fmt.Fprintf(&b, "- ztproxy browser ≥ 0.9 × bare Go RP: %.2f\n", zb.RPS()/gp.RPS())
		}
		if ng != nil {
			fmt.Fprintf(&b, "- ztproxy browser ≥ 0.5 × nginx: %.2f\n", zb.RPS()/ng.RPS())
		}
		if o2 != nil {
			fmt.Fprintf(&b, "- ztproxy browser ≥ 1.5 × oauth2-proxy: %.2f\n", zb.RPS()/o2.RPS())
		}
		if f := rep.FixedRate; f != nil {
			if s := f.stats("ztproxy-browser"); s != nil && s.DirectPresent {
				fmt.Fprintf(&b, "- p99 added over direct ≤ 1 ms at half of peak load (%s = %.0f req/s): %.2f ms\n", f.Basis, f.Rate, s.P99AddedMs)
			}
		}
		if iso := rep.Isolated; iso != nil && iso.FixedRate != nil {
			f := iso.FixedRate
			if s := f.stats("ztproxy-browser"); s != nil && s.DirectPresent {
				fmt.Fprintf(&b, "- p99 added over direct, %s (%s = %.0f req/s): %.2f ms\n", f.Layout, f.Basis, f.Rate, s.P99AddedMs)
			}
		}
	}
	if f := rep.FixedRate; f != nil {
		fixedRateMarkdown(&b, f)
	}
	if rep.Isolated != nil {
		isolatedMarkdown(&b, rep.Isolated)
	}
	if r := rep.Ready; r != nil {
		fmt.Fprintf(&b, "\nReady time (exec → /readyz 200) with %d routes and %d policies: median %v over %d run(s) %v; RSS when ready %.1f MB.\n",
			r.Routes, r.Policies, r.Median.Round(1e6), len(r.Runs), r.Runs, float64(r.RSSKB)/1024)
	}
	if s := rep.Sessions; s != nil {
		fmt.Fprintf(&b, "\nSessions: %d real sign-ins (OIDC code flow through the OP, %d users) in %.1f s, each then one allowed request. RSS %.1f MB → %.1f MB (%.0f B per session; VmHWM %.1f MB; store file %.1f MB).",
			s.Sessions, s.Users, s.Seconds, float64(s.BaseRSSKB)/1024, float64(s.RSSKB)/1024, s.PerSessionBytes, float64(s.HWMKB)/1024,
			float64(s.StoreBytes)/(1<<20))
		if s.Sessions < maxSessions {
			fmt.Fprintf(&b, " **Extrapolated** (linear from %d measured sessions, not measured) to 10,000 sessions: %.1f MB.", s.Sessions, float64(s.Extrapolated10k)/1024)
		} else {
			fmt.Fprintf(&b, " Measured at 10,000 live sessions: RSS %.1f MB.", float64(s.RSSKB)/1024)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nDynamoDB calls for the risk engine: 9 calls per 10,000 requests of one user over 60 s, measured against dynalite by `config/risk_test.go` (TestRiskDynamoCallBudget).\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

// fixedRateMarkdown renders one fixed-rate phase, labelled with its layout.
func fixedRateMarkdown(b *strings.Builder, f *FixedRate) {
	fmt.Fprintf(b, "\nFixed rate, layout %q (open loop, Go load generator, %d connections, %s per run, %d run(s) per candidate interleaved; latency from each request's intended send time): **%.0f req/s** = %s.\n\n",
		f.Layout, f.Conns, f.Duration, len(f.Runs)/max(1, len(f.Summary)), f.Rate, f.Basis)
	b.WriteString("| candidate | achieved req/s | p50 ms | p99 ms | p99.9 ms | p50 added over direct ms | p99 added over direct ms | CPU µs/req |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range f.Summary {
		added50, added99 := "–", "–"
		if s.DirectPresent && s.Name != "direct" {
			added50, added99 = fmt.Sprintf("%.2f", s.P50AddedMs), fmt.Sprintf("%.2f", s.P99AddedMs)
		}
		fmt.Fprintf(b, "| %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %.1f |\n", s.Name, s.Achieved, s.P50Ms, s.P99Ms, s.P999Ms, added50, added99, s.CPUPerReqUs)
	}
}
