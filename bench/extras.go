package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxSessions is the number of live sessions the issue asks about; the
// measurement stops there (or at -session-budget, whichever comes first).
const maxSessions = 10000

// oauth2ProxyVersion is the oauth2-proxy release the benchmark compares with.
const oauth2ProxyVersion = "v7.15.6"

// oauth2ProxyBin finds oauth2-proxy in the cache dir (or PATH) and, when
// allowed, installs it there with go install.
func oauth2ProxyBin(install bool, logf func(string, ...any)) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ztproxy-bench")
	bin := filepath.Join(dir, "oauth2-proxy")
	if fi, err := os.Stat(bin); err == nil && !fi.IsDir() {
		return bin, nil
	}
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("not installed (skipped in -short: `go run ./bench` installs it into %s)", dir)
	}
	os.MkdirAll(dir, 0o755)
	logf("installing oauth2-proxy %s into %s (takes a minute)", oauth2ProxyVersion, dir)
	cmd := exec.Command("go", "install", "github.com/oauth2-proxy/oauth2-proxy/v7@"+oauth2ProxyVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	cmd.Dir = os.TempDir() // outside this module: no go.mod changes
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install oauth2-proxy %s failed: %v: %.500s", oauth2ProxyVersion, err, out)
	}
	return bin, nil
}

func (e *env) startOAuth2Proxy(c *Candidate, opp *op, client opClient, addr string, u opUser, upURL string, m *Machine) error {
	bin, err := oauth2ProxyBin(e.o.oauth2ProxyInstall, e.o.logf)
	if err != nil {
		return err
	}
	m.OAuth2 = bin + " (" + oauth2ProxyVersion + ")"
	secret := make([]byte, 16)
	rand.Read(secret)
	args := []string{
		"--http-address=" + addr,
		"--provider=oidc",
		"--oidc-issuer-url=" + opp.issuer,
		"--client-id=" + client.ID,
		"--client-secret=" + client.Secret,
		"--redirect-url=" + client.RedirectURIs[0],
		"--cookie-secret=" + hex.EncodeToString(secret), // 32 bytes
		"--cookie-secure=false",
		"--email-domain=*",
		"--upstream=" + upURL + "/",
		"--code-challenge-method=S256",
		"--skip-provider-button=true",
		"--scope=openid email profile groups",
	}
	p, _, err := startProcess("oauth2-proxy", e.logs, nil, false, bin, args...)
	if err != nil {
		return err
	}
	e.track(p)
	if err := waitHTTP("http://"+addr+"/ping", 20*time.Second, p); err != nil {
		return err
	}
	bc := browserClient()
	resp, err := opp.login(bc, "http://"+addr+"/app/hello", u, false)
	if err != nil {
		return fmt.Errorf("oauth2-proxy sign-in: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("oauth2-proxy sign-in ended with %s at %s:\n%s", resp.Status, resp.Request.URL, tailFile(p.log, 2000))
	}
	ck, err := cookieHeader(bc, "http://"+addr+"/", "_oauth2_proxy")
	if err != nil {
		return err
	}
	c.URL = "http://" + addr + "/app/hello"
	c.headers = map[string]string{"Cookie": ck}
	c.pids = pidsOf(p)
	return nil
}

// ReadyResult is the time from exec to /readyz 200 with many routes.
type ReadyResult struct {
	Routes, Policies int
	Runs             []time.Duration
	Median           time.Duration
	RSSKB            int64 // VmRSS when ready (last run)
}

func (e *env) readyTime(opp *op, upURL string, short bool) (*ReadyResult, error) {
	rr := &ReadyResult{Routes: 1000, Policies: 200}
	names, routes := fillerRoutes(rr.Routes, upURL)
	pf := filepath.Join(e.work, "ready", "policies.cedar")
	writeFile(pf, benchPolicies(rr.Policies, names))
	n := 3
	if short {
		n = 1
	}
	for i := 0; i < n; i++ {
		dir := filepath.Join(e.work, "ready", fmt.Sprint(i))
		os.MkdirAll(dir, 0o755)
		admin := freeAddr()
		zc := ztpConfig{listen: freeAddr(), admin: admin, external: "http://127.0.0.1:1", issuer: opp.issuer,
			clientSecret: "x", stateDir: dir, routes: routes, policyFile: pf}
		cfg := filepath.Join(dir, "ztproxy.yaml")
		writeFile(cfg, zc.yaml())
		start := time.Now()
		p, _, err := startProcess(fmt.Sprintf("ztproxy-ready-%d", i), e.logs, nil, false, e.ztpBin, "serve", "--config", cfg)
		if err != nil {
			return nil, err
		}
		err = waitHTTP("http://"+admin+"/readyz", 30*time.Second, p)
		d := time.Since(start)
		if st, err := readProcStat([]int{p.pid()}); err == nil {
			rr.RSSKB = st.rssKB
		}
		p.stop()
		if err != nil {
			return nil, err
		}
		rr.Runs = append(rr.Runs, d)
	}
	s := append([]time.Duration(nil), rr.Runs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rr.Median = s[len(s)/2]
	e.o.logf("ready with %d routes / %d policies: %v (runs %v)", rr.Routes, rr.Policies, rr.Median, rr.Runs)
	return rr, nil
}

// SessionRSS is ztproxy's memory after N real sign-ins (each a distinct
// live session that then made a request), and a linear extrapolation.
type SessionRSS struct {
	Users           int
	Sessions        int
	Seconds         float64
	BaseRSSKB       int64
	RSSKB           int64
	HWMKB           int64
	PerSessionBytes float64
	Extrapolated10k int64 // KB, labelled as extrapolated
	StoreBytes      int64
}

func (e *env) sessionRSS(opp *op, client opClient, addr, upURL, policyFile, froutes string, users []opUser) (*SessionRSS, error) {
	dir := filepath.Join(e.work, "ztp-sessions")
	admin := freeAddr()
	routes := fmt.Sprintf("  - {name: app, host: 127.0.0.1, path_prefix: /app, upstream: %q, auth: browser}\n", upURL) + froutes
	p, err := e.startZtproxy("ztproxy-sessions", ztpConfig{listen: addr, admin: admin, external: "http://" + addr, issuer: opp.issuer,
		clientSecret: client.Secret, stateDir: dir, routes: routes, policyFile: policyFile})
	if err != nil {
		return nil, err
	}
	defer p.stop()
	base := "http://" + addr
	target := base + "/app/hello"
	u0, _ := url.Parse(target)
	signIn := func(c *http.Client, u opUser) error {
		c.Jar.SetCookies(u0, []*http.Cookie{{Name: "_ztp_session", Value: "", Path: "/", MaxAge: -1}})
		resp, err := opp.login(c, target, u, true)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("sign-in of %s ended with %s at %s", u.Sub, resp.Status, resp.Request.URL)
		}
		return nil
	}
	// One sign-in first, so one-time allocations (OIDC discovery, JWKS,
	// first Cedar evaluation) are in the baseline.
	if err := signIn(browserClient(), users[0]); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond)
	st, err := readProcStat([]int{p.pid()})
	if err != nil {
		return nil, err
	}
	sr := &SessionRSS{Users: len(users), BaseRSSKB: st.rssKB}
	deadline := time.Now().Add(e.o.sessionBudget)
	start := time.Now()
	var n atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	const workers = 4
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			clients := map[string]*http.Client{}
			for i := w; time.Now().Before(deadline) && n.Load() < maxSessions; i += workers {
				u := users[i%len(users)]
				c := clients[u.Sub]
				if c == nil {
					c = browserClient()
					clients[u.Sub] = c
				}
				if err := signIn(c, u); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	sr.Seconds = time.Since(start).Seconds()
	sr.Sessions = int(n.Load())
	time.Sleep(200 * time.Millisecond)
	st, err = readProcStat([]int{p.pid()})
	if err != nil {
		return nil, err
	}
	sr.RSSKB, sr.HWMKB = st.rssKB, st.hwmKB
	if sr.Sessions > 0 {
		sr.PerSessionBytes = float64(sr.RSSKB-sr.BaseRSSKB) * 1024 / float64(sr.Sessions)
		if sr.PerSessionBytes < 0 {
			sr.PerSessionBytes = 0
		}
		sr.Extrapolated10k = sr.BaseRSSKB + int64(sr.PerSessionBytes*10000/1024)
	}
	if fi, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		sr.StoreBytes = fi.Size()
	}
	e.o.logf("sessions: %d sign-ins in %.1fs; RSS %d -> %d kB (%.0f B/session)", sr.Sessions, sr.Seconds, sr.BaseRSSKB, sr.RSSKB, sr.PerSessionBytes)
	return sr, nil
}

// perfProfiles records where CPU goes under load with perf(1) for the
// ztproxy browser route and the bare Go proxy, into the results dir.
func (e *env) perfProfiles(cands []*Candidate) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		e.o.logf("perf not installed; no profiles")
		return
	}
	for _, c := range cands {
		if c.Name != "ztproxy-browser" && c.Name != "go-rp" && c.Name != "nginx" {
			continue
		}
		data := filepath.Join(e.work, c.Name+".perf")
		pid := c.pids()[0]
		pids := []string{}
		for _, x := range c.pids() {
			pids = append(pids, fmt.Sprint(x))
		}
		_ = pid
		rec := exec.Command(perf, "record", "-F", "999", "-g", "-p", strings.Join(pids, ","), "-o", data, "--", "sleep", fmt.Sprint(int(e.o.duration.Seconds())-1))
		var wrkErr error
		done := make(chan struct{})
		go func() { _, wrkErr = e.measure(c, 99, e.o.duration); close(done) }()
		time.Sleep(500 * time.Millisecond)
		out, err := rec.CombinedOutput()
		<-done
		if err != nil || wrkErr != nil {
			e.o.logf("perf record %s: %v %v %s", c.Name, err, wrkErr, out)
			continue
		}
		rep, _ := exec.Command(perf, "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.7",
			"--sort", "symbol", "-g", "none").CombinedOutput()
		writeFile(filepath.Join(e.o.out, "perf-"+c.Name+".txt"), string(rep))
		rep2, _ := exec.Command(perf, "report", "-i", data, "--stdio", "--children", "--percent-limit", "3",
			"--sort", "symbol", "-g", "none").CombinedOutput()
		writeFile(filepath.Join(e.o.out, "perf-"+c.Name+"-children.txt"), string(rep2))
		e.o.logf("perf profile of %s in %s", c.Name, e.o.out)
	}
}
