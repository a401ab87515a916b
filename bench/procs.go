package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child the harness started; it is killed when the harness
// stops it (and by the kernel if the harness dies: Pdeathsig).
type process struct {
	name string
	cmd  *exec.Cmd
	log  string // file with the child's output
	done chan struct{}
	once sync.Once
}

// startProcess starts bin with args, output to logDir/<name>.log. If
// readyLine, it waits for a line starting with "READY " on stdout and
// returns the rest of it.
func startProcess(name, logDir string, env []string, readyLine bool, bin string, args ...string) (*process, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	var stdout io.ReadCloser
	cmd.Stderr = lf
	if readyLine {
		stdout, err = cmd.StdoutPipe()
		if err != nil {
			return nil, "", err
		}
	} else {
		cmd.Stdout = lf
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	ready := make(chan string, 1)
	go func() {
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if rest, ok := strings.CutPrefix(line, "READY "); ok {
					select {
					case ready <- strings.TrimSpace(rest):
					default:
					}
				}
				fmt.Fprintln(lf, line)
			}
			io.Copy(lf, stdout)
		}
		cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	if !readyLine {
		return p, "", nil
	}
	select {
	case s := <-ready:
		return p, s, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready:\n%s", name, tailFile(logPath, 4000))
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, "", fmt.Errorf("%s not ready within 30s:\n%s", name, tailFile(logPath, 4000))
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s.
func (p *process) stop() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		if p.exited() {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200 or the timeout passes; p (may be
// nil) exiting aborts the wait.
func waitHTTP(url string, timeout time.Duration, p *process) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited:\n%s", p.name, tailFile(p.log, 4000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not 200 within %v (last error %v)", url, timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDial(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// procStat is CPU time and peak RSS of a set of processes.
type procStat struct {
	cpu   time.Duration // utime + stime
	hwmKB int64         // sum of VmHWM
	rssKB int64         // sum of VmRSS
}

var clkTck = 100.0 // USER_HZ; 100 on every Linux we run on

// readProcStat sums /proc/<pid>/stat utime+stime and /proc/<pid>/status
// VmHWM/VmRSS over pids.
func readProcStat(pids []int) (procStat, error) {
	var s procStat
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, err
		}
		// Fields after the ")" that ends comm: state is field 3; utime 14, stime 15.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		s.cpu += time.Duration((ut + st) / clkTck * float64(time.Second))
		st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return s, err
		}
		for _, line := range strings.Split(string(st2), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				s.hwmKB += kb(v)
			}
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s.rssKB += kb(v)
			}
		}
	}
	return s, nil
}

func kb(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

// childPIDs returns pid and its direct children (nginx master + workers).
func childPIDs(pid int) []int {
	pids := []int{pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}
