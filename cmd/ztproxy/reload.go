package main

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"time"

	"ztproxy/adminapi"
	"ztproxy/authn"
	"ztproxy/awscreds"
	"ztproxy/cae"
	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/devices"
	"ztproxy/metrics"
	"ztproxy/proxy"
	"ztproxy/riskengine"
	"ztproxy/signals"
)

// reloadPollInterval is how often the config and policy files are checked
// for changes. Polling (rather than inotify) also follows Kubernetes
// ConfigMap symlink swaps.
var reloadPollInterval = time.Second

// reloader rebuilds the proxy's snapshot on SIGHUP or when a watched file
// changes. A config that fails to load or build is logged and counted;
// the last good one keeps serving.
type reloader struct {
	path    string
	opts    config.Options
	current *config.Runtime
	bearer  *authn.BearerVerifier
	// sessions outlives reloads: its revocation cache is shared state.
	sessions authn.SessionStore
	keys     authn.WebAuthnStore
	// risk outlives reloads: its caches and pending observations.
	risk *riskengine.Engine
	// aws outlives reloads: its credential cache (aws settings need a restart).
	aws *awscreds.Minter
	// devices outlives reloads: its cache (devices settings need a restart).
	devices *devices.Inventory
	// cae outlives reloads: the compromised set and the feed's position.
	cae     *cae.Evaluator
	signals *signals.Receiver
	admin   *adminapi.API
	server  *proxy.Server
	metrics *metrics.Metrics
	log     *slog.Logger
	certs   *certs.Manager
	digest  [32]byte
}

func (r *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ticker := time.NewTicker(reloadPollInterval)
	defer ticker.Stop()
	r.digest = r.watchDigest()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("SIGHUP: reloading configuration")
			if r.certs != nil {
				_ = r.certs.Reload()
			}
			r.reload()
			r.digest = r.watchDigest()
		case <-ticker.C:
			if d := r.watchDigest(); d != r.digest {
				r.digest = d
				r.log.Info("configuration files changed: reloading")
				r.reload()
			}
		}
	}
}

func (r *reloader) reload() {
	rt, err := config.LoadRuntimeWith(r.path, r.opts)
	if err == nil {
		err = r.apply(rt)
	}
	r.metrics.ReloadResult(err, time.Now())
	if err != nil {
		r.log.Error("configuration rejected; the previous configuration keeps serving", "path", r.path, "err", err)
		return
	}
	logWarnings(r.log, rt.File.Warnings)
	if rt.File.Listen != r.current.File.Listen || rt.File.AdminListen != r.current.File.AdminListen ||
		!reflect.DeepEqual(rt.Certs, r.current.Certs) {
		r.log.Warn("listener or TLS file settings changed: they take effect after a restart")
	}
	r.current = rt
	r.log.Info("configuration reloaded", "routes", len(rt.Proxy.Routes))
}

// apply runs the reloadable part of start-up (assemble's steps) on rt
// with the components that outlive reloads, and swaps the result in.
func (r *reloader) apply(rt *config.Runtime) error {
	rep := rt.NewReport()
	// The running certs.Manager reloads the TLS files by itself; this only
	// refuses a configuration whose TLS files would stop a restart.
	buildCerts(rt, discardLogger, rep)
	bearer := r.bearer
	if !reflect.DeepEqual(rt.Bearer.IdPs, r.current.Bearer.IdPs) {
		bearer = buildBearer(rt, r.log, r.metrics, rep)
	}
	setBearer(&rt.Proxy, bearer)
	rep.Add("assertion.trusted_jwks", setAssertions(&rt.Proxy, rt, r.log, r.metrics))
	buildBrowser(rt, r.sessions, r.keys, r.log, r.metrics, rep)
	if err := rep.Err(); err != nil {
		return err
	}
	if rt.File.Store != r.current.File.Store || !reflect.DeepEqual(rt.File.Risk, r.current.File.Risk) ||
		!reflect.DeepEqual(rt.File.Devices, r.current.File.Devices) || !reflect.DeepEqual(rt.File.Tracing, r.current.File.Tracing) {
		r.log.Warn("store, risk, devices or tracing settings changed: they take effect after a restart")
	}
	setRisk(&rt.Proxy, r.risk)
	setAWS(&rt.Proxy, r.aws)
	setDevices(&rt.Proxy, r.devices)
	setGuard(&rt.Proxy, r.cae)
	setSignals(&rt.Proxy, r.signals)
	setAdmin(&rt.Proxy, r.admin)
	if err := r.server.Update(rt.Proxy); err != nil {
		return err
	}
	// Issue 19: the assertion keys rotate by reload. rt's keys were
	// loaded and checked with the rest of the file.
	if err := r.server.SetSigningKeys(rt.SigningKey, rt.PublishedKeys); err != nil {
		return err
	}
	r.bearer = bearer
	return nil
}

// watchDigest hashes the config file, its secret files and every file its
// policy globs match now, so an added, removed or edited policy file, or a
// rotated secret, is noticed.
func (r *reloader) watchDigest() [32]byte {
	h := sha256.New()
	f := r.current.File
	files := append([]string{r.path}, f.SecretFiles()...)
	for _, pattern := range f.Policies {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(f.BaseDir, pattern)
		}
		matches, _ := filepath.Glob(pattern)
		files = append(files, matches...)
	}
	sort.Strings(files)
	for _, name := range files {
		io.WriteString(h, name)
		h.Write([]byte{0})
		if data, err := os.ReadFile(name); err == nil {
			h.Write(data)
		}
		h.Write([]byte{0})
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}
