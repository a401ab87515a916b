package main

// Isolated layout (-pin). On the benchmark host the load generator, the
// upstream and the proxy share every CPU, so at "half of peak" the box is
// 80–90 % busy and p99 measures CPU queueing between processes. In
// production a proxy has its cores to itself. With -pin the harness repeats
// the peak and the fixed-rate phases on a second set of processes: the load
// tool and the upstream on CPU 0, the candidate under test alone on CPU 1.
// The default (shared) layout is measured first, unchanged.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// sharedLayout labels measurements in the default layout.
const sharedLayout = "shared: load generator, upstream and candidate on all CPUs"

// cpuLayout says where the processes of the isolated phase run (taskset -c
// CPU lists).
type cpuLayout struct {
	Name string `json:"name"`
	// LoadCPUs run the load tool (wrk -t1 or the Go loadgen with
	// GOMAXPROCS=1) and the upstream (GOMAXPROCS=1).
	LoadCPUs string `json:"load_cpus"`
	// CandidateCPUs run the proxy under test: nginx (master and its one
	// worker), ztproxy and the bare go-rp (GOMAXPROCS=1). direct has none.
	CandidateCPUs string `json:"candidate_cpus"`
	Detail        string `json:"detail"`
}

// isolatedLayout is the -pin layout on a 2-CPU host.
var isolatedLayout = cpuLayout{
	Name:          "isolated: proxy on its own core",
	LoadCPUs:      "0",
	CandidateCPUs: "1",
	Detail: "load tool (wrk -t1, or the Go loadgen with GOMAXPROCS=1) and the Go upstream (GOMAXPROCS=1) pinned to CPU 0; " +
		"the candidate alone on CPU 1: nginx with worker_processes 1 (master and worker on CPU 1), ztproxy and the bare go-rp with GOMAXPROCS=1; " +
		"direct has no candidate process (CPU 1 idle)",
}

// isolatedNames are the candidates of the isolated phase, in interleaved
// order (peak and fixed rate).
var isolatedNames = []string{"direct", "ztproxy-browser", "nginx", "go-rp"}

// Isolated is the result of the -pin phase: pinned peak (closed loop) and
// the fixed rate at the fraction of the *pinned* ztproxy-browser peak.
type Isolated struct {
	Layout     cpuLayout    `json:"layout"`
	Settings   string       `json:"settings"`
	Candidates []*Candidate `json:"candidates"`
	FixedRate  *FixedRate   `json:"fixed_rate,omitempty"`
}

// onCPUs returns the command line that runs bin with args on the CPU list
// cpus through taskset(1), or bin and args unchanged when cpus is empty
// (the default, unpinned layout). taskset execs bin, so the pid is bin's.
func onCPUs(cpus, bin string, args ...string) (string, []string) {
	if cpus == "" {
		return bin, args
	}
	return "taskset", append([]string{"-c", cpus, bin}, args...)
}

// loadThreads is the load tool's thread count (wrk -t, loadgen GOMAXPROCS):
// one when the load tool is pinned to one CPU.
func (e *env) loadThreads(c *Candidate) int {
	if c.loadCPUs != "" {
		return 1
	}
	return e.o.threads
}

// tagSuffix marks raw files and log lines of the isolated phase.
func (c *Candidate) tagSuffix() string {
	if c.loadCPUs != "" {
		return "-pinned"
	}
	return ""
}

// checkPinnable reports why the isolated layout cannot run here.
func checkPinnable(cpus int) error {
	if cpus < 2 {
		return fmt.Errorf("-pin needs at least 2 CPUs, this machine has %d", cpus)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("-pin needs taskset (util-linux): %w", err)
	}
	return nil
}

// isolatedInputs are what the isolated phase reuses from the shared one.
type isolatedInputs struct {
	opp        *op
	client     opClient
	user       opUser
	ztpAddr    string // registered as a redirect URI with the OP
	altAddr    string // the same for ztproxy-alt; empty without -alt-*
	policyFile string
	nginxBin   string
}

// isolatedPhase starts a pinned upstream, nginx, go-rp and ztproxy,
// measures their closed-loop peak with the pinned load tool and then runs
// the fixed-rate phase at the fraction of the pinned ztproxy-browser peak.
// Its processes are stopped before it returns.
func (e *env) isolatedPhase(in isolatedInputs) (iso *Isolated, err error) {
	if err := checkPinnable(runtime.NumCPU()); err != nil {
		return nil, err
	}
	lay := isolatedLayout
	iso = &Isolated{Layout: lay, Settings: fmt.Sprintf("closed loop: wrk -t1 -c%d -d%s --latency pinned to CPU %s; warm-up %s per candidate discarded; %d round(s), interleaved",
		e.o.connections, e.o.duration, lay.LoadCPUs, warmupFor(e.o), e.o.rounds)}
	e.o.logf("isolated layout: %s", lay.Detail)
	var procs []*process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	start := func(name string, env []string, ready bool, cpus, bin string, args ...string) (*process, string, error) {
		pbin, pargs := onCPUs(cpus, bin, args...)
		p, line, err := startProcess(name, e.logs, env, ready, pbin, pargs...)
		if err == nil {
			procs = append(procs, e.track(p))
		}
		return p, line, err
	}
	one := "GOMAXPROCS=1"
	up, upAddr, err := start("upstream-pinned", []string{roleEnv + "=upstream", one}, true, lay.LoadCPUs, e.self, "-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	upURL := "http://" + upAddr
	cands := []*Candidate{{Name: "direct", Tool: "wrk", URL: upURL + "/app/hello", pids: pidsOf(up),
		Desc: "load tool straight to the pinned upstream (both on CPU " + lay.LoadCPUs + ")"}}

	// nginx: one worker on the candidate CPU.
	ndir := filepath.Join(e.work, "nginx-pinned")
	os.MkdirAll(filepath.Join(ndir, "tmp"), 0o755)
	conf := filepath.Join(ndir, "nginx.conf")
	nginxAddr := freeAddr()
	writeFile(conf, nginxConf(ndir, nginxAddr, freeAddr(), upAddr, e.certs, 1))
	ng, _, err := start("nginx-pinned", nil, false, lay.CandidateCPUs, in.nginxBin, "-p", ndir, "-c", conf, "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := waitDial(nginxAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("pinned nginx: %v\n%s", err, tailFile(filepath.Join(ndir, "error.log"), 2000))
	}
	cands = append(cands, &Candidate{Name: "nginx", Tool: "wrk", URL: "http://" + nginxAddr + "/app/hello",
		pids: func() []int { return childPIDs(ng.pid()) }, Desc: "nginx, worker_processes 1, on CPU " + lay.CandidateCPUs})

	gp, gpAddr, err := start("go-rp-pinned", []string{roleEnv + "=goproxy", one}, true, lay.CandidateCPUs, e.self, "-addr", "127.0.0.1:0", "-upstream", upURL)
	if err != nil {
		return nil, err
	}
	cands = append(cands, &Candidate{Name: "go-rp", Tool: "wrk", URL: "http://" + gpAddr + "/app/hello", pids: pidsOf(gp),
		Desc: "bare httputil.ReverseProxy, MaxIdleConnsPerHost 512, GOMAXPROCS=1 on CPU " + lay.CandidateCPUs})

	// ztproxy: the browser route of the shared phase, GOMAXPROCS=1.
	_, froutes := fillerRoutes(20, upURL) // same names as the shared phase's, which the policies use
	admin := freeAddr()
	zc := ztpConfig{listen: in.ztpAddr, admin: admin, external: "http://" + in.ztpAddr, issuer: in.opp.issuer,
		clientSecret: in.client.Secret, stateDir: filepath.Join(e.work, "ztp-pinned"), policyFile: in.policyFile,
		routes: fmt.Sprintf("  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}\n", upURL) +
			fmt.Sprintf("  - {name: app, host: 127.0.0.1, path_prefix: /app, upstream: %q, auth: browser}\n", upURL) + froutes}
	zp, err := e.startZtproxyOn(lay.CandidateCPUs, "ztproxy-pinned", e.ztpBin, []string{one}, zc)
	if err != nil {
		return nil, err
	}
	procs = append(procs, zp)
	cookie, err := browserCookie(in.opp, in.ztpAddr, in.user)
	if err != nil {
		return nil, fmt.Errorf("pinned ztproxy: %w", err)
	}
	cands = append(cands, &Candidate{Name: "ztproxy-browser", Tool: "wrk", URL: "http://" + in.ztpAddr + "/app/hello",
		headers: map[string]string{"Cookie": cookie}, pids: pidsOf(zp),
		Desc: "ztproxy browser route (same policies, risk, assertion, audit), GOMAXPROCS=1 on CPU " + lay.CandidateCPUs})

	names := isolatedNames
	if in.altAddr != "" {
		// The A/B build or environment, pinned like ztproxy-browser.
		altBin := e.o.altBin
		if altBin == "" {
			altBin = e.ztpBin
		}
		azc := zc
		azc.listen, azc.admin, azc.external, azc.stateDir = in.altAddr, freeAddr(), "http://"+in.altAddr, filepath.Join(e.work, "ztp-alt-pinned")
		ap, err := e.startZtproxyOn(lay.CandidateCPUs, "ztproxy-alt-pinned", altBin, append([]string{one}, e.o.altEnv...), azc)
		if err != nil {
			return nil, err
		}
		procs = append(procs, ap)
		altCookie, err := browserCookie(in.opp, in.altAddr, in.user)
		if err != nil {
			return nil, fmt.Errorf("pinned ztproxy-alt: %w", err)
		}
		cands = append(cands, &Candidate{Name: "ztproxy-alt", Tool: "wrk", URL: "http://" + in.altAddr + "/app/hello",
			headers: map[string]string{"Cookie": altCookie}, pids: pidsOf(ap),
			Desc: fmt.Sprintf("ztproxy-browser's setup on %s (env %q), GOMAXPROCS=1 on CPU %s", altBin, e.o.altEnv, lay.CandidateCPUs)})
		names = append(names[:len(names):len(names)], "ztproxy-alt")
	}

	// Interleave in names order; honour -only like the shared phase.
	byName := map[string]*Candidate{}
	for _, c := range cands {
		c.loadCPUs = lay.LoadCPUs
		byName[c.Name] = c
	}
	cands = cands[:0]
	for _, n := range names {
		c := byName[n]
		if e.o.only != nil && !e.o.only[n] {
			c.Unavailable = "skipped (-only)"
		}
		cands = append(cands, c)
	}
	iso.Candidates = cands
	if err := e.throughput(cands); err != nil {
		return iso, err
	}
	iso.FixedRate, err = e.fixedRatePhase(cands, isolatedNames, lay.Name) // adds ztproxy-alt when present
	return iso, err
}

// isolatedMarkdown renders the isolated phase: pinned peak and fixed rate.
func isolatedMarkdown(b *strings.Builder, iso *Isolated) {
	fmt.Fprintf(b, "\n## Isolated layout (%s)\n\n", iso.Layout.Name)
	fmt.Fprintf(b, "Layout: %s.\n\nPeak (%s):\n\n", iso.Layout.Detail, iso.Settings)
	b.WriteString("| candidate | tool | pinned peak req/s (median) | min–max | p50 ms | p99 ms | CPU µs/req |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	for _, c := range iso.Candidates {
		if c.Unavailable != "" || len(c.Runs) == 0 {
			fmt.Fprintf(b, "| %s | %s | unavailable: %s | | | | |\n", c.Name, c.Tool, c.Unavailable)
			continue
		}
		rps := c.series(func(r RunResult) float64 { return r.ReqPerSec })
		lo, hi := rps[0], rps[0]
		for _, x := range rps {
			lo, hi = min(lo, x), max(hi, x)
		}
		fmt.Fprintf(b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %.2f | %.1f |\n", c.Name, c.Tool, c.RPS(), lo, hi,
			median(c.series(func(r RunResult) float64 { return r.P50Ms })), median(c.series(func(r RunResult) float64 { return r.P99Ms })),
			median(c.series(func(r RunResult) float64 { return r.CPUPerReqUs })))
	}
	b.WriteString("\nCandidates:\n\n")
	for _, c := range iso.Candidates {
		fmt.Fprintf(b, "- `%s`: %s\n", c.Name, c.Desc)
	}
	if f := iso.FixedRate; f != nil {
		fixedRateMarkdown(b, f)
	}
}
