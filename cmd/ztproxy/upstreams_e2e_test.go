package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// upstreamNginx is one real upstream process: Debian nginx in a single
// process (master_process off), so SIGKILL takes it down at once.
type upstreamNginx struct {
	bin, dir, addr, name string
	cmd                  *exec.Cmd
	done                 chan struct{}
}

func (u *upstreamNginx) start(t *testing.T) {
	t.Helper()
	conf := fmt.Sprintf(`
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server {
    listen %[2]s;
    location = /healthz { return 200 "ok\n"; }
    location / { default_type text/plain; return 200 "%[3]s\n"; }
  }
}
`, u.dir, u.addr, u.name)
	os.MkdirAll(filepath.Join(u.dir, "tmp"), 0o700)
	writeFile(t, filepath.Join(u.dir, "nginx.conf"), conf)
	u.cmd = exec.Command(u.bin, "-p", u.dir, "-e", filepath.Join(u.dir, "error.log"), "-c", filepath.Join(u.dir, "nginx.conf"),
		"-g", "daemon off; master_process off; pid "+filepath.Join(u.dir, "nginx.pid")+";")
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(u.cmd, u.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", u.addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(u.dir, "error.log"))
	t.Fatalf("nginx %s did not start:\n%s", u.name, log)
}

func (u *upstreamNginx) kill() {
	if u.cmd != nil {
		u.cmd.Process.Signal(syscall.SIGKILL)
		<-u.done
		u.cmd = nil
	}
}

// Issue 18 (several upstreams): three real nginx upstreams behind one
// least_request route of the real binary; one is killed mid-run. Once
// the health check has marked it unhealthy no client request fails (nor
// before: connection failures of GETs go to another upstream); /readyz
// and the metrics show it; when it comes back it gets requests again.
func TestE2EUpstreamsKilledAndRecovered(t *testing.T) {
	bin := nginxBinary(t)
	dir := t.TempDir()
	var ups []*upstreamNginx
	var urls []string
	for i := range 3 {
		u := &upstreamNginx{bin: bin, dir: filepath.Join(dir, fmt.Sprintf("nginx%d", i)), name: fmt.Sprintf("nginx-%d", i),
			addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		u.start(t)
		t.Cleanup(u.kill)
		ups = append(ups, u)
		urls = append(urls, fmt.Sprintf("%q", "http://"+u.addr))
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - name: pool
    host: 127.0.0.1
    auth: public
    upstreams: [%s]
    lb_policy: least_request
    health_check: {path: /healthz, interval: 200ms, timeout: 150ms, healthy_threshold: 2, unhealthy_threshold: 2}
    outlier_detection: {consecutive_failures: 3, ejection_time: 1s}
`, public, admin, public, strings.Join(urls, ", ")))
	p := startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)

	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	var stopped atomic.Bool
	countErrors := atomic.Bool{}
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				resp, err := client.Get("http://" + public + "/hello")
				var body string
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = strings.TrimSpace(string(b))
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					}
				}
				mu.Lock()
				if err != nil && countErrors.Load() {
					failures = append(failures, err.Error())
				}
				if err == nil {
					seen[body]++
				}
				mu.Unlock()
			}
		}()
	}
	defer func() { stopped.Store(true); wg.Wait() }()
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
	readyz := func() string {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err.Error()
		}
		return readBody(t, resp)
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; readyz:\n%s", what, readyz())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("all three upstreams to serve", func() bool { return len(snapshot()) == 3 })

	ups[1].kill()
	waitUntil("the killed upstream to be unhealthy", func() bool {
		return strings.Contains(readyz(), "upstream pool "+ups[1].addr+" unhealthy")
	})
	countErrors.Store(true)
	before := snapshot()
	time.Sleep(1500 * time.Millisecond)
	after := snapshot()
	mu.Lock()
	if len(failures) > 0 {
		t.Errorf("%d client requests failed after the health check ejected the dead upstream: %v", len(failures), failures[:min(5, len(failures))])
	}
	mu.Unlock()
	if after["nginx-1"] != before["nginx-1"] || after["nginx-0"] == before["nginx-0"] || after["nginx-2"] == before["nginx-2"] {
		t.Errorf("traffic while nginx-1 is down: before %v, after %v", before, after)
	}
	if m := p.metrics(t); !strings.Contains(m, fmt.Sprintf(`ztproxy_upstream_healthy{route="pool",upstream=%q} 0`, ups[1].addr)) {
		t.Errorf("metrics do not show the dead upstream:\n%s", grepLines(m, "ztproxy_upstream_"))
	}

	ups[1].start(t)
	waitUntil("the restarted upstream to be healthy again", func() bool {
		return strings.Contains(readyz(), "upstream pool "+ups[1].addr+" healthy")
	})
	back := snapshot()["nginx-1"]
	waitUntil("the restarted upstream to get requests", func() bool { return snapshot()["nginx-1"] > back })
	if m := p.metrics(t); !strings.Contains(m, fmt.Sprintf(`ztproxy_upstream_healthy{route="pool",upstream=%q} 1`, ups[1].addr)) {
		t.Errorf("metrics do not show the recovery:\n%s", grepLines(m, "ztproxy_upstream_"))
	}

	// Issue 18: a reload that takes nginx-1 out of the pool drops its
	// ztproxy_upstream_healthy series; the others keep theirs.
	cfgPath := filepath.Join(dir, "ztproxy.yaml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, strings.Replace(string(data), strings.Join(urls, ", "), urls[0]+", "+urls[2], 1))
	p.cmd.Process.Signal(syscall.SIGHUP)
	series := func(addr string) string {
		return fmt.Sprintf(`ztproxy_upstream_healthy{route="pool",upstream=%q}`, addr)
	}
	waitUntil("the removed upstream's series to go", func() bool { return !strings.Contains(p.metrics(t), series(ups[1].addr)) })
	if m := p.metrics(t); !strings.Contains(m, series(ups[0].addr)+" 1") || !strings.Contains(m, series(ups[2].addr)+" 1") {
		t.Errorf("metrics after the reload:\n%s", grepLines(m, "ztproxy_upstream_"))
	}
}
