package testenv

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// DynaliteOptions configures StartDynaliteWith.
type DynaliteOptions struct {
	// Persist keeps the tables in a LevelDB directory under t.TempDir(), so data
	// survives Stop and Restart (as DynamoDB's does across an outage). By default
	// storage is in memory and a restart starts empty.
	Persist bool
	// InstantTableState makes tables ACTIVE at once instead of spending dynalite's
	// default 500 ms in CREATING/DELETING/UPDATING.
	InstantTableState bool
}

// Dynalite is a running (or stopped) dynalite DynamoDB API server.
type Dynalite struct {
	Endpoint string // http://127.0.0.1:<port>
	Port     int

	dir  string
	env  []string
	mu   sync.Mutex
	proc *nodeProcess
}

// StartDynalite starts dynalite with in-memory storage on a free loopback port and
// stops it when the test ends.
func StartDynalite(t testing.TB) *Dynalite {
	t.Helper()
	return StartDynaliteWith(t, DynaliteOptions{})
}

// StartDynaliteWith is StartDynalite with options.
func StartDynaliteWith(t testing.TB, opts DynaliteOptions) *Dynalite {
	t.Helper()
	d := &Dynalite{dir: nodePackageDir(t, "dynalite")}
	if opts.Persist {
		d.env = append(d.env, "DATA_DIR="+t.TempDir())
	}
	if opts.InstantTableState {
		d.env = append(d.env, "TABLE_MS=0")
	}
	t.Cleanup(func() {
		d.Stop()
		d.mu.Lock()
		proc := d.proc
		d.mu.Unlock()
		if t.Failed() && proc != nil {
			t.Logf("testenv: dynalite output (tail):\n%s", proc.log.String())
		}
	})
	for attempt := 1; ; attempt++ {
		d.Port = FreePort(t)
		err := d.start()
		if addrInUse(err) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		break
	}
	d.Endpoint = "http://127.0.0.1:" + strconv.Itoa(d.Port)
	return d
}

func (d *Dynalite) start() error {
	env := append([]string{"PORT=" + strconv.Itoa(d.Port)}, d.env...)
	proc, _, err := startNode("dynalite", d.dir, "server.mjs", nil, env)
	if err != nil {
		return err
	}
	if err := waitDial("127.0.0.1:"+strconv.Itoa(d.Port), 10*time.Second); err != nil {
		proc.stop()
		return err
	}
	d.mu.Lock()
	d.proc = proc
	d.mu.Unlock()
	return nil
}

// Stop stops the server (SIGTERM, then kill after 5 s); clients then get
// connection refused, as in a DynamoDB outage. Stopping twice is harmless.
func (d *Dynalite) Stop() {
	d.mu.Lock()
	proc := d.proc
	d.mu.Unlock()
	if proc != nil {
		proc.stop()
	}
}

// Restart stops the server if it runs and starts it again on the same port.
// Without DynaliteOptions.Persist the tables are gone afterwards.
func (d *Dynalite) Restart(t testing.TB) {
	t.Helper()
	d.Stop()
	if err := d.start(); err != nil {
		t.Fatalf("testenv: restarting dynalite on port %d: %v", d.Port, err)
	}
}
