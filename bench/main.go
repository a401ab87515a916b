// Command bench is ztproxy's reproducible end-to-end load benchmark: it
// builds ztproxy, starts every candidate on loopback in front of one Go
// upstream with a fixed 1 KiB response, signs in through a real OpenID
// provider (npm oidc-provider) for the session cookies and tokens, measures
// each candidate with the same wrk settings interleaved over several rounds,
// and writes a Markdown table plus the raw tool output to a results
// directory. See docs/performance.md.
//
//	go run ./bench                 # full: 3 rounds x 10 s per candidate
//	go run ./bench -short          # CI smoke: 1 round x 2 s
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	short       bool
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	connections int
	threads     int
	out         string
	repo        string
	// sessionBudget bounds how long the session-RSS measurement signs in.
	sessionBudget time.Duration
	// perf records a CPU profile of ztproxy's browser route with perf(1).
	perf bool
	// oauth2ProxyInstall allows `go install` of oauth2-proxy when missing.
	oauth2ProxyInstall bool
	// only, when set, restricts the measured candidates (and skips the
	// cost side): for quick comparisons while tuning.
	only map[string]bool
	// altBin and altEnv start a second ztproxy ("ztproxy-alt", browser
	// route) from another build and/or with extra environment, for A/B
	// comparisons that are interleaved like every other candidate.
	altBin string
	altEnv []string
	// rateFraction of ztproxy-browser's peak is the open-loop rate (the
	// target is stated at 0.5).
	rateFraction float64
	// pin adds the isolated layout: peak and fixed rate again with the load
	// tool and upstream on CPU 0 and the candidate alone on CPU 1.
	pin  bool
	logf func(format string, args ...any)
}

func main() {
	if runRole() {
		return
	}
	var o options
	flag.BoolVar(&o.short, "short", false, "CI smoke mode: 2 s per candidate, 1 round, no oauth2-proxy install")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured run length per candidate and round")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (A B C ... A B C ...)")
	flag.IntVar(&o.connections, "connections", 50, "concurrent keep-alive connections (wrk -c)")
	flag.IntVar(&o.threads, "threads", 2, "load generator threads (wrk -t)")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/<timestamp>)")
	flag.DurationVar(&o.sessionBudget, "session-budget", 60*time.Second, "time spent signing in sessions for the RSS measurement")
	flag.BoolVar(&o.perf, "perf", false, "record a perf CPU profile of ztproxy (browser route) and of the bare Go proxy")
	onlyList := flag.String("only", "", "comma-separated candidates to measure (default all); skips ready time and session RSS")
	flag.Float64Var(&o.rateFraction, "rate-fraction", 0.5, "fixed-rate phase at this fraction of ztproxy-browser's peak req/s")
	flag.BoolVar(&o.pin, "pin", false, "also measure the isolated layout: load tool + upstream on CPU 0, candidate alone on CPU 1 (taskset; GOMAXPROCS=1, nginx 1 worker)")
	flag.StringVar(&o.altBin, "alt-ztproxy", "", "also measure this ztproxy binary as ztproxy-alt (A/B tuning)")
	var uo usersOptions
	flag.IntVar(&uo.users, "users", 0, "distinct-users soak instead of the comparison: send this many requests, each from a new bearer user, and print RSS against distinct users (-alt-ztproxy measures that binary)")
	flag.Float64Var(&uo.rate, "users-rate", 400, "distinct-users soak: new users per second")
	flag.IntVar(&uo.step, "users-step", 5000, "distinct-users soak: RSS sample every this many users")
	flag.DurationVar(&uo.idle, "users-idle", 30*time.Second, "distinct-users soak: idle time over which CPU is measured afterwards")
	flag.DurationVar(&uo.settle, "users-settle", 25*time.Second, "distinct-users soak: wait before the idle CPU measurement (the last write-behind flushes)")
	flag.StringVar(&uo.config, "users-config", "", "distinct-users soak: YAML appended to the proxy's config (e.g. 'risk: {max_users: 50000}')")
	altEnv := flag.String("alt-env", "", "space-separated K=V environment for ztproxy-alt (implies -alt-ztproxy of this build if unset)")
	flag.Parse()
	if *altEnv != "" {
		o.altEnv = strings.Fields(*altEnv)
	}
	if *onlyList != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(*onlyList, ",") {
			o.only[strings.TrimSpace(n)] = true
		}
	}
	o.oauth2ProxyInstall = true
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		if !set["duration"] {
			o.duration = 2 * time.Second
		}
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["session-budget"] {
			o.sessionBudget = 3 * time.Second
		}
		o.oauth2ProxyInstall = false
	}
	repo, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	o.repo = repo
	if o.out == "" {
		o.out = filepath.Join(repo, "bench", "results", time.Now().Format("20060102-150405"))
	}
	o.logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
	if uo.users > 0 {
		if err := runUsers(o, uo); err != nil {
			fatal(err)
		}
		return
	}
	rep, err := run(o)
	if rep != nil && rep.Markdown != "" {
		fmt.Println(rep.Markdown)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "bench: FAIL: %v\n", err)
	os.Exit(1)
}

// repoRoot is the nearest directory at or above the working directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
