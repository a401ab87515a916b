package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"ztproxy/audit"
	"ztproxy/authn"
	"ztproxy/awscreds"
	"ztproxy/config"
	"ztproxy/decide"
	"ztproxy/devices"
	"ztproxy/metrics"
	"ztproxy/riskengine"
	"ztproxy/store"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, err := configFlagOnly("serve", args, stdout, stderr)
	if err != nil {
		return err
	}
	return serveWith(ctx, path, config.DefaultOptions(), stdout, stderr)
}

// cmdSidecar runs the proxy in sidecar mode in front of one local
// service: `ztproxy sidecar --upstream http://127.0.0.1:8080 --config F`.
func cmdSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sidecar", stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	upstream := fs.String("upstream", "", "the local service, e.g. http://127.0.0.1:8080 (overrides sidecar.upstream)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usageError("--config is required")
	}
	opts := config.DefaultOptions()
	opts.Override = func(f *config.File) {
		f.Mode = config.ModeSidecar
		if f.Sidecar == nil {
			sc := config.DefaultSidecar()
			f.Sidecar = &sc
		}
		if *upstream != "" {
			if !strings.Contains(*upstream, "://") {
				*upstream = "http://" + *upstream
			}
			f.Sidecar.Upstream = *upstream
		}
	}
	return serveWith(ctx, *path, opts, stdout, stderr)
}

// serveWith loads the config with opts (kept for reloads) and serves.
func serveWith(ctx context.Context, path string, opts config.Options, stdout, stderr io.Writer) error {
	in, _, err := assemble(ctx, path, opts, assembleServe, stdout, stderr)
	if err != nil {
		printProblems(stderr, path, err)
		return exitCodeError(1)
	}
	defer in.close()
	return serve(ctx, path, in, opts)
}

// serve runs the assembled proxy until ctx ends.
func serve(ctx context.Context, path string, in *instance, opts config.Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt, logger, metrics := in.rt, in.logger, in.metrics
	if m := in.certs; m != nil {
		m.SetReloadHook(func(err error) {
			if err == nil {
				metrics.SetCertExpiries(m.Expiries())
			}
		})
		metrics.SetCertExpiries(m.Expiries())
		in.listeners.TLS = m.TLSConfig()
		go m.Run(ctx)
		if a := rt.File.TLS.ACME; a != nil && a.HTTPListen != "" {
			if err := serveACMEHTTP(ctx, a.HTTPListen, m.HTTPHandler(), logger); err != nil {
				logger.Error("acme: tls.acme.http_listen", "err", err)
				return exitCodeError(1)
			}
		}
	}
	metrics.ReloadResult(nil, time.Now())
	r := &reloader{path: path, opts: opts, current: rt, bearer: in.bearer, sessions: in.sessions, keys: in.keys,
		risk: in.risk, aws: in.aws, devices: in.devices, cae: in.cae, signals: in.signals, admin: in.admin, server: in.server, metrics: metrics, log: logger, certs: in.certs}
	go r.run(ctx)

	scheme := "https"
	if in.listeners.TLS == nil {
		scheme = "http"
	}
	logger.Info("ztproxy serving", "listen", scheme+"://"+in.listeners.Public.Addr().String(),
		"admin", "http://"+in.listeners.Admin.Addr().String(), "routes", len(rt.Proxy.Routes), "external_url", rt.File.ExternalURL)
	if err := in.server.Serve(ctx, in.listeners); err != nil {
		return err
	}
	logger.Info("ztproxy stopped: drained")
	return nil
}

// startPendingRevocations opens the revocation journal and retries what
// it holds in the background; stop ends the retries and closes the journal
// (what is still pending stays in it for the next run).
func startPendingRevocations(ctx context.Context, rt *config.Runtime, st store.SessionStore, metrics *metrics.Metrics) (*store.PendingRevocations, func(), error) {
	pending, err := config.OpenPendingRevocations(rt.File, st, metrics.SetRevocationsPending, metrics.ObserveRevocationRetry)
	if err != nil {
		return nil, nil, err
	}
	retryCtx, stopRetries := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { pending.Run(retryCtx); close(done) }()
	return pending, func() {
		stopRetries()
		<-done
		pending.Close()
	}, nil
}

// newBearer builds the bearer verifier, or returns nil when no identity
// provider accepts bearer tokens.
func newBearer(rt *config.Runtime, logger *slog.Logger, metrics *metrics.Metrics) (*authn.BearerVerifier, error) {
	if len(rt.Bearer.IdPs) == 0 {
		return nil, nil
	}
	cfg := rt.Bearer
	cfg.Logger, cfg.KeySetEvents, cfg.UserinfoEvents = logger, keySetEvents(metrics), metrics.ObserveUserinfo
	return authn.NewBearerVerifier(cfg)
}

// setAssertions rebuilds the sidecar's assertion verifier with the logger
// and the key set metrics.
func setAssertions(c *decide.Config, rt *config.Runtime, logger *slog.Logger, metrics *metrics.Metrics) error {
	if rt.Assertion == nil {
		return nil
	}
	ac := *rt.Assertion
	ac.Logger, ac.Events = logger, keySetEvents(metrics)
	v, err := authn.NewAssertionVerifier(ac)
	if err != nil {
		return err
	}
	c.Assertions = v
	return nil
}

// setBrowser builds browser sign-in when the config has it.
func setBrowser(c *decide.Config, rt *config.Runtime, sessions authn.SessionStore, keys authn.WebAuthnStore, logger *slog.Logger, metrics *metrics.Metrics) error {
	if rt.Browser == nil {
		return nil
	}
	bc := *rt.Browser
	bc.Store, bc.Logger, bc.KeySetEvents = sessions, logger, keySetEvents(metrics)
	if bc.WebAuthn != nil {
		wc := *bc.WebAuthn
		wc.Store = keys
		bc.WebAuthn = &wc
	}
	b, err := authn.NewBrowser(bc)
	if err != nil {
		return err
	}
	c.Browser = b
	return nil
}

// newAWSMinter builds the STS minter, or nil without aws.roles. The
// proxy's own credentials (for assume_role) come from the standard AWS
// chain, resolved on first use.
func newAWSMinter(ctx context.Context, rt *config.Runtime, metrics *metrics.Metrics, logger *slog.Logger) (*awscreds.Minter, error) {
	if rt.AWS == nil {
		return nil, nil
	}
	cfg := *rt.AWS
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	cfg.Credentials, cfg.Logger = awsCfg.Credentials, logger
	cfg.OnMint = func(role string, d time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = awscreds.STSErrorCode(err)
		}
		metrics.AWSMints.WithLabelValues(role, result).Inc()
		metrics.AWSSTSTime.Observe(d.Seconds())
	}
	cfg.OnCacheHit = func(role string) { metrics.AWSCacheHits.WithLabelValues(role).Inc() }
	return awscreds.New(cfg)
}

func setAWS(c *decide.Config, m *awscreds.Minter) {
	if m != nil {
		c.AWS = m
	}
}

// newDeviceInventory builds the device inventory over the store, or
// returns nil when devices.enabled is off.
func newDeviceInventory(f *config.File, st store.DeviceStore, logger *slog.Logger, m *metrics.Metrics) (*devices.Inventory, error) {
	cfg, err := f.DevicesConfig(logger, keySetEvents(m))
	if cfg == nil || err != nil {
		return nil, err
	}
	cfg.Store, cfg.OnLookup, cfg.OnEvent = config.DeviceStore(st), m.ObserveDeviceLookup, m.ObserveDeviceEvent
	if feed, ok := st.(store.ChangePublisher); ok {
		// Revocations, removals and managed changes reach every replica
		// through the change feed (issue 17).
		cfg.Announce = func(ctx context.Context, id string) error {
			return feed.PublishChange(ctx, store.Change{Kind: store.ChangeDevice, DeviceID: id})
		}
	}
	return devices.New(*cfg)
}

// setDevices stores the inventory without creating a non-nil interface
// around a nil pointer.
func setDevices(c *decide.Config, inv *devices.Inventory) {
	if inv != nil {
		c.Devices = inv
	}
}

// setRisk stores the engine without creating a non-nil interface around a
// nil pointer.
func setRisk(c *decide.Config, e *riskengine.Engine) {
	if e != nil {
		c.Risk = e
	}
}

// setBearer stores v without creating a non-nil interface around a nil
// pointer.
func setBearer(c *decide.Config, v *authn.BearerVerifier) {
	if v != nil {
		c.Bearer = v
	}
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newAuditLogger opens the audit destination: one JSON object per line.
func newAuditLogger(output string, stdout, stderr io.Writer) (*slog.Logger, func(), error) {
	var w io.Writer
	closeFn := func() {}
	switch output {
	case "", "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		f, err := os.OpenFile(output, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("audit.output: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	// Batch lines (flushed within a few ms); closeFn flushes them, and
	// serve returns only after draining, so SIGTERM loses none.
	aw := audit.NewWriter(w)
	closeOut := closeFn
	closeFn = func() {
		aw.Close()
		closeOut()
	}
	w = aw
	// The same JSON lines as slog.NewJSONHandler (message under "event"),
	// encoded without reflection.
	h := audit.NewHandler(w)
	return slog.New(h).With("log", "audit"), closeFn, nil
}

// printProblems prints a config error: one problem per line.
func printProblems(w io.Writer, path string, err error) {
	var perr *config.Errors
	if errors.As(err, &perr) {
		fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(perr.Problems))
		for _, p := range perr.Problems {
			fmt.Fprintf(w, "  %s\n", p.String())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

// keySetEvents feeds key set fetches and refused refetches to the metrics.
func keySetEvents(m *metrics.Metrics) authn.KeySetEvents {
	return authn.KeySetEvents{Fetch: m.ObserveKeySetFetch, RefetchRefused: m.ObserveKeyRefetchRefused}
}
