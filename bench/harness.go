package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Candidate is one thing measured: a URL, the headers that authenticate
// there, the load tool, and the server processes whose CPU and RSS count.
type Candidate struct {
	Name        string      `json:"name"`
	Desc        string      `json:"desc"`
	Tool        string      `json:"tool"` // wrk | loadgen
	URL         string      `json:"url"`
	Unavailable string      `json:"unavailable,omitempty"`
	Runs        []RunResult `json:"runs"`
	PeakRSSKB   int64       `json:"peak_rss_kb"`
	RSSNote     string      `json:"rss_note,omitempty"`

	headers map[string]string
	tls     *tlsFiles
	pids    func() []int
	// loadCPUs pins the load tool (wrk or loadgen) to these CPUs and runs
	// it with one thread; empty in the default, unpinned layout.
	loadCPUs string
}

type tlsFiles struct{ ca, cert, key string }

// RunResult is one measured run.
type RunResult struct {
	Round        int     `json:"round"`
	ReqPerSec    float64 `json:"req_per_sec"`
	Requests     int64   `json:"requests"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	Non2xx       int64   `json:"non2xx"`
	SocketErrors int64   `json:"socket_errors"`
	CPUPerReqUs  float64 `json:"cpu_us_per_req"`
	Raw          string  `json:"raw"`
}

// Report is everything one run of the harness found.
type Report struct {
	Machine  Machine `json:"machine"`
	Settings string  `json:"settings"`
	// Layout names where the processes of the main tables ran.
	Layout     string       `json:"layout"`
	Candidates []*Candidate `json:"candidates"`
	Ready      *ReadyResult `json:"ready,omitempty"`
	Sessions   *SessionRSS  `json:"sessions,omitempty"`
	FixedRate  *FixedRate   `json:"fixed_rate,omitempty"`
	// TraceExports is what each tracing candidate exported (issue 19).
	TraceExports map[string]TraceExport `json:"trace_exports,omitempty"`
	// Isolated is the -pin phase: the same measurements with the proxy on
	// its own core.
	Isolated *Isolated `json:"isolated,omitempty"`
	Notes    []string  `json:"notes"`
	Markdown string    `json:"-"`
	OutDir   string    `json:"-"`
}

type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"model"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	Wrk       string `json:"wrk"`
	Nginx     string `json:"nginx"`
	OAuth2    string `json:"oauth2_proxy"`
}

type env struct {
	o        options
	work     string
	logs     string
	self     string
	ztpBin   string
	procs    []*process
	upstream string // host:port
	certs    string
}

func (e *env) track(p *process) *process { e.procs = append(e.procs, p); return p }

func (e *env) stopAll() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
}

func run(o options) (rep *Report, err error) {
	rep = &Report{OutDir: o.out, Layout: sharedLayout}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "ztpbench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			o.logf("kept the work dir for inspection: %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	e := &env{o: o, work: work, logs: filepath.Join(o.out, "logs")}
	os.MkdirAll(e.logs, 0o755)
	defer e.stopAll()
	if e.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if o.perf {
		// `go run` strips the symbol table; perf needs it for the go-rp profile.
		self := filepath.Join(work, "ztpbench")
		b := exec.Command("go", "build", "-o", self, "./bench")
		b.Dir = o.repo
		if out, err := b.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./bench: %v\n%s", err, out)
		}
		e.self = self
	}
	wrkBin, err := findBin("wrk", "/usr/bin/wrk")
	if err != nil {
		return nil, fmt.Errorf("wrk is required (apt-get install wrk): %w", err)
	}
	nginxBin, err := findBin("nginx", "/usr/sbin/nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx is required (apt-get install nginx): %w", err)
	}
	rep.Machine = machine(wrkBin, nginxBin)
	if o.pin {
		if err := checkPinnable(rep.Machine.CPUs); err != nil {
			return nil, err
		}
	}
	rep.Settings = fmt.Sprintf("wrk -t%d -c%d -d%s --latency (Lua script: headers + non-2xx counter); %d round(s), interleaved; warm-up %s per candidate discarded",
		o.threads, o.connections, o.duration, o.rounds, warmupFor(o))
	o.logf("machine: %d CPUs, %s, %s", rep.Machine.CPUs, rep.Machine.Model, rep.Machine.GoVersion)

	// ztproxy
	t0 := time.Now()
	e.ztpBin = filepath.Join(work, "ztproxy")
	build := exec.Command("go", "build", "-o", e.ztpBin, "./cmd/ztproxy")
	build.Dir = o.repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/ztproxy: %v\n%s", err, out)
	}
	o.logf("built ztproxy in %v", time.Since(t0).Round(time.Millisecond))
	e.certs = filepath.Join(work, "certs")
	if out, err := exec.Command(e.ztpBin, "certs", "dev", "--out", e.certs).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ztproxy certs dev: %v\n%s", err, out)
	}

	// 1. upstream
	up, addr, err := startProcess("upstream", e.logs, []string{roleEnv + "=upstream"}, true, e.self, "-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.track(up)
	e.upstream = addr
	upURL := "http://" + addr
	var cands []*Candidate
	cands = append(cands, &Candidate{Name: "direct", Desc: "wrk straight to the Go upstream (the physical limit)",
		Tool: "wrk", URL: upURL + "/app/hello", pids: pidsOf(up)})

	// 2. nginx (plain + TLS with required client cert)
	nginxPlain, nginxTLS := freeAddr(), freeAddr()
	ndir := filepath.Join(work, "nginx")
	os.MkdirAll(filepath.Join(ndir, "tmp"), 0o755)
	conf := filepath.Join(ndir, "nginx.conf")
	workers := runtime.NumCPU()
	writeFile(conf, nginxConf(ndir, nginxPlain, nginxTLS, addr, e.certs, workers))
	if out, err := exec.Command(nginxBin, "-t", "-q", "-p", ndir, "-c", conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	ng, _, err := startProcess("nginx", e.logs, nil, false, nginxBin, "-p", ndir, "-c", conf, "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	e.track(ng)
	if err := waitDial(nginxPlain, 10*time.Second); err != nil {
		return nil, fmt.Errorf("nginx: %v\n%s", err, tailFile(filepath.Join(ndir, "error.log"), 2000))
	}
	nginxPids := func() []int { return childPIDs(ng.pid()) }
	cands = append(cands, &Candidate{Name: "nginx", Desc: fmt.Sprintf("nginx %d workers, keepalive upstream pool, access log on", workers),
		Tool: "wrk", URL: "http://" + nginxPlain + "/app/hello", pids: nginxPids})

	// 3. bare Go ReverseProxy, tuned transport (and the default one, full mode)
	gp, gpAddr, err := startProcess("go-rp", e.logs, []string{roleEnv + "=goproxy"}, true, e.self, "-addr", "127.0.0.1:0", "-upstream", upURL)
	if err != nil {
		return nil, err
	}
	e.track(gp)
	cands = append(cands, &Candidate{Name: "go-rp", Desc: "bare httputil.ReverseProxy, MaxIdleConnsPerHost 512",
		Tool: "wrk", URL: "http://" + gpAddr + "/app/hello", pids: pidsOf(gp)})
	if !o.short {
		gpd, gpdAddr, err := startProcess("go-rp-default", e.logs, []string{roleEnv + "=goproxy"}, true, e.self,
			"-addr", "127.0.0.1:0", "-upstream", upURL, "-default-transport")
		if err != nil {
			return nil, err
		}
		e.track(gpd)
		cands = append(cands, &Candidate{Name: "go-rp-default", Desc: "bare httputil.ReverseProxy, http.DefaultTransport (2 idle conns/host)",
			Tool: "wrk", URL: "http://" + gpdAddr + "/app/hello", pids: pidsOf(gpd)})
	}

	// The OP, with clients for ztproxy and oauth2-proxy.
	ztpAddr, ztpAdmin := freeAddr(), freeAddr()
	altAddr, altAdmin := freeAddr(), freeAddr()
	sessAddr := freeAddr()
	o2pAddr := freeAddr()
	ztpClient := opClient{ID: "ztproxy", Secret: "ztp-bench-secret",
		RedirectURIs: []string{"http://" + ztpAddr + "/.ztp/callback", "http://" + sessAddr + "/.ztp/callback", "http://" + altAddr + "/.ztp/callback"}}
	pinnedZtpAddr, pinnedAltAddr := "", ""
	if o.pin {
		pinnedZtpAddr = freeAddr()
		ztpClient.RedirectURIs = append(ztpClient.RedirectURIs, "http://"+pinnedZtpAddr+"/.ztp/callback")
		if o.altBin != "" || o.altEnv != nil {
			pinnedAltAddr = freeAddr()
			ztpClient.RedirectURIs = append(ztpClient.RedirectURIs, "http://"+pinnedAltAddr+"/.ztp/callback")
		}
	}
	tcs := traceCands()
	for _, tc := range tcs {
		ztpClient.RedirectURIs = append(ztpClient.RedirectURIs, "http://"+tc.addr+"/.ztp/callback")
	}
	o2pClient := opClient{ID: "oauth2-proxy", Secret: "o2p-bench-secret", RedirectURIs: []string{"http://" + o2pAddr + "/oauth2/callback"},
		GrantTypes: []string{"authorization_code", "refresh_token"}}
	alice := opUser{Sub: "alice", Email: "alice@ztp.test", Password: "alice-bench-pw", Groups: []string{"eng", "admins"}}
	users := []opUser{alice}
	for i := 0; i < sessionUsers; i++ {
		users = append(users, opUser{Sub: fmt.Sprintf("user%03d", i), Email: fmt.Sprintf("user%03d@ztp.test", i),
			Password: "pw-" + fmt.Sprint(i), Groups: []string{"eng"}})
	}
	opp, err := startOP(o.repo, work, e.logs, []opClient{ztpClient, o2pClient}, users)
	if err != nil {
		return nil, err
	}
	e.track(opp.proc)
	o.logf("oidc-provider at %s", opp.issuer)

	// 5. oauth2-proxy (authenticated path)
	o2p := &Candidate{Name: "oauth2-proxy", Desc: "oauth2-proxy v7.15.6, cookie session (OIDC against the same OP)", Tool: "wrk"}
	if err := e.startOAuth2Proxy(o2p, opp, o2pClient, o2pAddr, alice, upURL, &rep.Machine); err != nil {
		o2p.Unavailable = err.Error()
		rep.Notes = append(rep.Notes, "oauth2-proxy unavailable: "+err.Error())
		o.logf("oauth2-proxy unavailable: %v", err)
	}
	cands = append(cands, o2p)

	// 6+7. ztproxy plaintext: browser route and bearer route
	fnames, froutes := fillerRoutes(20, upURL)
	policyFile := filepath.Join(work, "policies", "bench.cedar")
	writeFile(policyFile, benchPolicies(50, fnames)+pool3Policy)
	ztpDir := filepath.Join(work, "ztp-plain")
	poolRoute, err := e.pool3Route(upURL)
	if err != nil {
		return nil, err
	}
	routes := fmt.Sprintf("  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}\n", upURL) +
		fmt.Sprintf("  - {name: app, host: 127.0.0.1, path_prefix: /app, upstream: %q, auth: browser}\n", upURL) + poolRoute + froutes
	zc := ztpConfig{listen: ztpAddr, admin: ztpAdmin, external: "http://" + ztpAddr, issuer: opp.issuer,
		clientSecret: ztpClient.Secret, stateDir: ztpDir, routes: routes, policyFile: policyFile}
	zp, err := e.startZtproxy("ztproxy", zc)
	if err != nil {
		return nil, err
	}
	ztpCookie, err := browserCookie(opp, ztpAddr, alice)
	if err != nil {
		return nil, err
	}
	cands = append(cands, &Candidate{Name: "ztproxy-browser", Tool: "wrk",
		Desc: "ztproxy browser route: session cookie, 50 Cedar policies, risk engine (cached profile), assertion JWT, audit log",
		URL:  "http://" + ztpAddr + "/app/hello", headers: map[string]string{"Cookie": ztpCookie}, pids: pidsOf(zp)})
	if o.altBin != "" || o.altEnv != nil {
		altBin := o.altBin
		if altBin == "" {
			altBin = e.ztpBin
		}
		// A second ztproxy (another build or environment) for A/B
		// comparisons, interleaved with the first.
		azc := zc
		azc.listen, azc.admin, azc.external, azc.stateDir = altAddr, altAdmin, "http://"+altAddr, filepath.Join(work, "ztp-alt")
		ap, err := e.startZtproxyAs("ztproxy-alt", altBin, o.altEnv, azc)
		if err != nil {
			return nil, err
		}
		altCookie, err := browserCookie(opp, altAddr, alice)
		if err != nil {
			return nil, err
		}
		cands = append(cands, &Candidate{Name: "ztproxy-alt", Tool: "wrk",
			Desc: fmt.Sprintf("ztproxy-browser's setup on %s (env %q)", altBin, o.altEnv),
			URL:  "http://" + altAddr + "/app/hello", headers: map[string]string{"Cookie": altCookie}, pids: pidsOf(ap)})
	}
	token, err := opp.codeFlowAccessToken(ztpClient, alice, true)
	if err != nil {
		return nil, fmt.Errorf("bearer token: %w", err)
	}
	cands = append(cands, &Candidate{Name: "ztproxy-pool3", Tool: "wrk",
		Desc: "ztproxy-browser's setup on a route with 3 upstream processes, lb_policy least_request, health checks",
		URL:  "http://" + ztpAddr + "/pool/hello", headers: map[string]string{"Cookie": ztpCookie}, pids: pidsOf(zp)})
	cands = append(cands, &Candidate{Name: "ztproxy-bearer", Tool: "wrk",
		Desc: "ztproxy bearer route: RS256 JWT access token from the OP, same policies, risk, assertion",
		URL:  "http://" + ztpAddr + "/api/hello", headers: map[string]string{"Authorization": "Bearer " + token}, pids: pidsOf(zp)})
	traceC, stopSinks, err := e.startTraceCandidates(tcs, zc, opp, alice, rep)
	defer stopSinks()
	if err != nil {
		return nil, err
	}
	cands = append(cands, traceC...)

	// 8. TLS pair with client certificates (Go load generator: wrk has no client certs)
	tlsAddr, tlsAdmin := freeAddr(), freeAddr()
	zt, err := e.startZtproxy("ztproxy-tls", ztpConfig{listen: tlsAddr, admin: tlsAdmin, external: "https://" + tlsAddr, tls: true,
		certDir: e.certs, issuer: opp.issuer, clientSecret: ztpClient.Secret, stateDir: filepath.Join(work, "ztp-tls"), policyFile: policyFile,
		routes: fmt.Sprintf("  - {name: devices, host: 127.0.0.1, path_prefix: /devices, upstream: %q, auth: mtls}\n", upURL) + froutes})
	if err != nil {
		return nil, err
	}
	tf := &tlsFiles{ca: filepath.Join(e.certs, "ca.pem"), cert: filepath.Join(e.certs, "client.pem"), key: filepath.Join(e.certs, "client-key.pem")}
	cands = append(cands,
		&Candidate{Name: "nginx-mtls", Tool: "loadgen", tls: tf, pids: nginxPids,
			Desc: "nginx TLS 1.3, ssl_verify_client on, keepalive upstream", URL: "https://" + nginxTLS + "/devices/hello"},
		&Candidate{Name: "ztproxy-mtls", Tool: "loadgen", tls: tf, pids: pidsOf(zt),
			Desc: "ztproxy TLS 1.3 mTLS route (device cert is the identity), same policies, assertion", URL: "https://" + tlsAddr + "/devices/hello"},
	)
	rep.Candidates = cands
	if o.only != nil {
		for _, c := range cands {
			if !o.only[c.Name] && c.Unavailable == "" {
				c.Unavailable = "skipped (-only)"
			}
		}
	}

	if err := e.throughput(cands); err != nil {
		return rep, err
	}
	stopSinks()
	for _, c := range cands {
		if c.Unavailable != "" || c.pids == nil {
			continue
		}
		if st, err := readProcStat(c.pids()); err == nil {
			c.PeakRSSKB = st.hwmKB
		}
	}
	for _, c := range cands {
		switch c.Name {
		case "ztproxy-browser", "ztproxy-bearer":
			c.RSSNote = "one process serves both routes"
		case "nginx", "nginx-mtls":
			c.RSSNote = "master + workers, one process set serves both"
		}
	}

	if rep.FixedRate, err = e.fixedRatePhase(cands, fixedRateNames, sharedLayout); err != nil {
		return rep, err
	}

	if o.perf {
		e.perfProfiles(cands)
	}

	if o.pin {
		in := isolatedInputs{opp: opp, client: ztpClient, user: alice, ztpAddr: pinnedZtpAddr, altAddr: pinnedAltAddr, policyFile: policyFile, nginxBin: nginxBin}
		if rep.Isolated, err = e.isolatedPhase(in); err != nil {
			return rep, err
		}
	}

	// Cost side.
	if o.only != nil {
		rep.Notes = append(rep.Notes, "-only: ready time and session RSS not measured")
	} else {
		e.costSide(rep, opp, ztpClient, sessAddr, upURL, policyFile, froutes, users[1:])
	}

	rep.Markdown = markdown(rep)
	writeFile(filepath.Join(o.out, "results.md"), rep.Markdown)
	js, _ := json.MarshalIndent(rep, "", "  ")
	writeFile(filepath.Join(o.out, "results.json"), string(js))
	o.logf("results in %s", o.out)
	return rep, nil
}

const sessionUsers = 100

// throughput probes every available candidate, runs its discarded warm-up
// and then the interleaved closed-loop rounds, appending to c.Runs.
func (e *env) throughput(cands []*Candidate) error {
	o := e.o
	// Every candidate must answer 2xx before anything is measured; this also
	// teaches the risk engine alice's network and browser (low rate) so that
	// the profile is cached when the load starts.
	for _, c := range cands {
		if c.Unavailable != "" {
			continue
		}
		for i := 0; i < 5; i++ {
			if err := probe(c); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	o.logf("all candidates answer 2xx; warming up")
	for _, c := range cands {
		if c.Unavailable != "" {
			continue
		}
		r, err := e.measure(c, 0, warmupFor(o))
		if err != nil {
			return err
		}
		o.logf("warm-up %-16s %8.0f req/s (discarded)", c.Name+c.tagSuffix(), r.ReqPerSec)
	}
	for round := 1; round <= o.rounds; round++ {
		for _, c := range cands {
			if c.Unavailable != "" {
				continue
			}
			r, err := e.measure(c, round, o.duration)
			if err != nil {
				return err
			}
			c.Runs = append(c.Runs, r)
			o.logf("round %d %-16s %8.0f req/s  p50 %.2f ms  p99 %.2f ms  cpu %.1f µs/req", round, c.Name+c.tagSuffix(), r.ReqPerSec, r.P50Ms, r.P99Ms, r.CPUPerReqUs)
		}
	}
	return nil
}

// costSide measures the ready time and the RSS of many sessions.
func (e *env) costSide(rep *Report, opp *op, client opClient, sessAddr, upURL, policyFile, froutes string, users []opUser) {
	if rr, err := e.readyTime(opp, upURL, e.o.short); err != nil {
		rep.Notes = append(rep.Notes, "ready-time measurement failed: "+err.Error())
	} else {
		rep.Ready = rr
	}
	if sr, err := e.sessionRSS(opp, client, sessAddr, upURL, policyFile, froutes, users); err != nil {
		rep.Notes = append(rep.Notes, "session RSS measurement failed: "+err.Error())
	} else {
		rep.Sessions = sr
	}
}

func warmupFor(o options) time.Duration {
	if o.short {
		return time.Second
	}
	return 5 * time.Second
}

func pidsOf(p *process) func() []int { return func() []int { return []int{p.pid()} } }

func findBin(name, def string) (string, error) {
	if fi, err := os.Stat(def); err == nil && !fi.IsDir() {
		return def, nil
	}
	return exec.LookPath(name)
}

func machine(wrkBin, nginxBin string) Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	out, _ := exec.Command(wrkBin, "-v").CombinedOutput()
	m.Wrk = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	out, _ = exec.Command(nginxBin, "-v").CombinedOutput()
	m.Nginx = strings.TrimSpace(string(out))
	return m
}

// browserCookie signs alice in through the ztproxy at addr (login → OP →
// callback, second factor ticked) and returns the session Cookie header.
func browserCookie(opp *op, addr string, u opUser) (string, error) {
	bc := browserClient()
	resp, err := opp.login(bc, "http://"+addr+"/app/hello", u, true)
	if err != nil {
		return "", fmt.Errorf("ztproxy sign-in: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("ztproxy sign-in ended with %s at %s", resp.Status, resp.Request.URL)
	}
	return cookieHeader(bc, "http://"+addr+"/app/", "_ztp_session")
}

func (e *env) startZtproxy(name string, zc ztpConfig) (*process, error) {
	return e.startZtproxyAs(name, e.ztpBin, nil, zc)
}

func (e *env) startZtproxyAs(name, bin string, env []string, zc ztpConfig) (*process, error) {
	return e.startZtproxyOn("", name, bin, env, zc)
}

// startZtproxyOn starts ztproxy pinned to cpus (taskset -c), or unpinned
// when cpus is empty.
func (e *env) startZtproxyOn(cpus, name, bin string, env []string, zc ztpConfig) (*process, error) {
	os.MkdirAll(zc.stateDir, 0o755)
	cfg := filepath.Join(zc.stateDir, "ztproxy.yaml")
	if err := writeFile(cfg, zc.yaml()); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "check-config", "--config", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s check-config: %v\n%s", name, err, out)
	}
	pbin, pargs := onCPUs(cpus, bin, "serve", "--config", cfg)
	p, _, err := startProcess(name, e.logs, env, false, pbin, pargs...)
	if err != nil {
		return nil, err
	}
	e.track(p)
	if err := waitHTTP("http://"+zc.admin+"/readyz", 20*time.Second, p); err != nil {
		return nil, err
	}
	return p, nil
}
