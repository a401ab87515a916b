package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// probe sends one request as the load tool will and wants a 2xx.
func probe(c *Candidate) error {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if c.tls != nil {
		cfg, err := c.tls.config()
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	req, _ := http.NewRequest(http.MethodGet, c.URL, nil)
	req.Header.Set("User-Agent", benchUA)
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s (Location %q): %.300s", c.URL, resp.Status, resp.Header.Get("Location"), body)
	}
	if len(body) != ResponseSize {
		return fmt.Errorf("GET %s: body of %d bytes, want the upstream's %d", c.URL, len(body), ResponseSize)
	}
	return nil
}

func (t *tlsFiles) config() (*tls.Config, error) {
	pem, err := os.ReadFile(t.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// measure runs the candidate's load tool once for d and fails loudly on any
// non-2xx response. Round 0 is the warm-up.
func (e *env) measure(c *Candidate, round int, d time.Duration) (RunResult, error) {
	r := RunResult{Round: round}
	var before procStat
	if c.pids != nil {
		before, _ = readProcStat(c.pids())
	}
	tag := fmt.Sprintf("%s%s-round%d", c.Name, c.tagSuffix(), round)
	if round == 0 {
		tag = c.Name + c.tagSuffix() + "-warmup"
	}
	raw := filepath.Join(e.o.out, "raw", tag+".txt")
	os.MkdirAll(filepath.Dir(raw), 0o755)
	r.Raw, _ = filepath.Rel(e.o.out, raw)
	switch c.Tool {
	case "wrk":
		ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
		defer cancel()
		script := filepath.Join(e.work, c.Name+".lua")
		writeFile(script, wrkScript(c.headers))
		args := []string{fmt.Sprintf("-t%d", e.loadThreads(c)), fmt.Sprintf("-c%d", e.o.connections),
			fmt.Sprintf("-d%ds", max(1, int(d.Round(time.Second).Seconds()))), "--latency", "-s", script, c.URL}
		bin, args := onCPUs(c.loadCPUs, "wrk", args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		os.WriteFile(raw, append([]byte("$ "+bin+" "+strings.Join(args, " ")+"\n"), out...), 0o644)
		if err != nil {
			return r, fmt.Errorf("%s: wrk: %v\n%s", c.Name, err, out)
		}
		if err := parseWrk(string(out), &r); err != nil {
			return r, fmt.Errorf("%s: %v\n%s", c.Name, err, out)
		}
	case "loadgen":
		args := []string{"-url", c.URL, "-c", fmt.Sprint(e.o.connections), "-t", fmt.Sprint(e.loadThreads(c)), "-d", d.String(),
			"-ca", c.tls.ca, "-cert", c.tls.cert, "-key", c.tls.key, "-H", "User-Agent: " + benchUA}
		for k, v := range c.headers {
			args = append(args, "-H", k+": "+v)
		}
		lr, _, err := e.loadgen(c, tag, d, args)
		if err != nil {
			return r, err
		}
		r.ReqPerSec, r.Requests, r.P50Ms, r.P99Ms, r.Non2xx, r.SocketErrors = lr.ReqPerSec, lr.Requests, lr.P50Ms, lr.P99Ms, lr.Non2xx, lr.Errors
	}
	if r.Non2xx > 0 {
		return r, fmt.Errorf("%s: %d of %d responses were not 2xx (see %s) — refusing to measure an error path", c.Name, r.Non2xx, r.Requests, raw)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("%s: no requests completed (see %s)", c.Name, raw)
	}
	if c.pids != nil {
		if after, err := readProcStat(c.pids()); err == nil && r.Requests > 0 {
			r.CPUPerReqUs = float64((after.cpu - before.cpu).Microseconds()) / float64(r.Requests)
		}
	}
	return r, nil
}

// loadgen runs the Go load generator with args for about d, keeps its
// output under raw/<tag>.txt and returns its result and that path.
func (e *env) loadgen(c *Candidate, tag string, d time.Duration, args []string) (LoadResult, string, error) {
	raw := filepath.Join(e.o.out, "raw", tag+".txt")
	os.MkdirAll(filepath.Dir(raw), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	bin, pargs := onCPUs(c.loadCPUs, e.self, args...)
	cmd := exec.CommandContext(ctx, bin, pargs...)
	cmd.Env = append(os.Environ(), roleEnv+"=loadgen")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	prefix := "$ loadgen "
	if c.loadCPUs != "" {
		prefix = "$ taskset -c " + c.loadCPUs + " loadgen "
	}
	os.WriteFile(raw, append([]byte(prefix+strings.Join(args, " ")+"\n"), append(out, stderr.Bytes()...)...), 0o644)
	var lr LoadResult
	if err != nil {
		return lr, raw, fmt.Errorf("%s: loadgen: %v\n%s", c.Name, err, stderr.String())
	}
	if err := json.Unmarshal(out, &lr); err != nil {
		return lr, raw, fmt.Errorf("%s: loadgen output: %v", c.Name, err)
	}
	return lr, raw, nil
}

var errNoLatency = errors.New("wrk output has no latency distribution")

// parseWrk reads req/s, the 50 %/99 % latencies, request count, socket
// errors and the script's non-2xx count from wrk --latency output.
func parseWrk(s string, r *RunResult) error {
	foundRPS, found50, found99, foundBad := false, false, false, false
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			fmt.Sscan(f[1], &r.ReqPerSec)
			foundRPS = true
		case len(f) == 2 && f[0] == "50%":
			r.P50Ms, found50 = wrkDur(f[1]), true
		case len(f) == 2 && f[0] == "99%":
			r.P99Ms, found99 = wrkDur(f[1]), true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			fmt.Sscan(f[0], &r.Requests)
		case len(f) >= 2 && f[0] == "BENCH_NON2XX":
			fmt.Sscan(f[1], &r.Non2xx)
			foundBad = true
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			var n int64
			fmt.Sscan(f[len(f)-1], &n)
			if n > r.Non2xx {
				r.Non2xx = n
			}
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				var n int64
				fmt.Sscan(strings.TrimSuffix(f[i+1], ","), &n)
				r.SocketErrors += n
			}
		}
	}
	if !foundRPS {
		return errors.New("wrk output has no Requests/sec")
	}
	if !found50 || !found99 {
		return errNoLatency
	}
	if !foundBad {
		return errors.New("wrk output has no BENCH_NON2XX line (Lua script did not run)")
	}
	return nil
}

// wrkDur converts wrk's "1.23ms" / "456.00us" / "1.02s" to milliseconds.
func wrkDur(s string) float64 {
	var v float64
	switch {
	case strings.HasSuffix(s, "us"):
		fmt.Sscan(strings.TrimSuffix(s, "us"), &v)
		return v / 1000
	case strings.HasSuffix(s, "ms"):
		fmt.Sscan(strings.TrimSuffix(s, "ms"), &v)
		return v
	case strings.HasSuffix(s, "m"):
		fmt.Sscan(strings.TrimSuffix(s, "m"), &v)
		return v * 60000
	case strings.HasSuffix(s, "s"):
		fmt.Sscan(strings.TrimSuffix(s, "s"), &v)
		return v * 1000
	}
	return 0
}
