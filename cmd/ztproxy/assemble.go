package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
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
	"ztproxy/store"
	"ztproxy/tracing"
)

// startMode says what assemble may take hold of.
type startMode int

const (
	// assembleServe opens everything: the audit file, the store (and its
	// lock), the listeners.
	assembleServe startMode = iota
	// assembleCheck is check-config: it builds every component serve builds,
	// through the same functions, but takes nothing exclusive. The store,
	// the audit file and the listeners get the closest check that takes
	// nothing over, and what that cannot prove becomes a note.
	assembleCheck
)

// instance is everything serve runs, built but not serving yet.
type instance struct {
	rt        *config.Runtime
	logger    *slog.Logger
	audit     *slog.Logger
	metrics   *metrics.Metrics
	certs     *certs.Manager // nil for a plaintext listener
	bearer    *authn.BearerVerifier
	risk      *riskengine.Engine
	aws       *awscreds.Minter
	sessions  authn.SessionStore
	keys      authn.WebAuthnStore
	devices   *devices.Inventory
	cae       *cae.Evaluator // nil in check-config
	signals   *signals.Receiver
	admin     *adminapi.API
	server    *proxy.Server
	listeners proxy.Listeners
	tracer    *tracing.Tracer // nil: tracing off
	closers   []func()        // run in reverse order by close
}

// startTracing starts the tracer provider (serve only; check-config checks
// the settings and builds nothing that would connect). Its pending spans
// are flushed at close, within 5 s.
func (in *instance) startTracing(ctx context.Context, mode startMode, rep *config.Report) *tracing.Tracer {
	if mode != assembleServe {
		return nil
	}
	tracer, err := tracing.New(ctx, in.rt.File.TracingConfig(version))
	if err != nil {
		rep.Add("tracing", err)
		return nil
	}
	if tracer != nil {
		in.closers = append(in.closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracer.Shutdown(sctx); err != nil {
				in.logger.Warn("tracing: flushing spans at exit", "err", err)
			}
		})
		in.logger.Info("tracing on", "exporter", in.rt.File.Tracing.Exporter, "endpoint", in.rt.File.Tracing.Endpoint)
	}
	return tracer
}

// close releases what assemble opened, last opened first.
func (in *instance) close() {
	for i := len(in.closers) - 1; i >= 0; i-- {
		in.closers[i]()
	}
	in.closers = nil
}

// assemble is serve's start-up, shared with check-config so that
// check-config says OK exactly when serve would start (see startMode for
// the exceptions, which become notes). It loads and builds the file, then
// constructs every component, reporting every problem at its YAML path.
// On failure it returns an *config.Errors, and the report when the file
// itself loaded (for its warnings), and has closed what it opened.
func assemble(ctx context.Context, path string, opts config.Options, mode startMode, stdout, stderr io.Writer) (*instance, *config.Report, error) {
	rt, err := config.LoadRuntimeWith(path, opts)
	if err != nil {
		return nil, nil, err
	}
	in := &instance{rt: rt, metrics: metrics.New(), logger: discardLogger, audit: discardLogger}
	rep := rt.NewReport()
	if mode == assembleServe {
		in.logger = newLogger(rt.File.Log, stderr)
		logWarnings(in.logger, rt.File.Warnings)
	}
	in.openAudit(mode, stdout, stderr, rep)
	in.certs = buildCerts(rt, in.logger, rep)
	in.bearer = buildBearer(rt, in.logger, in.metrics, rep)
	rep.Add("assertion.trusted_jwks", setAssertions(&rt.Proxy, rt, in.logger, in.metrics))
	in.tracer = in.startTracing(ctx, mode, rep)
	st := in.openStore(ctx, mode, rep)
	in.buildACMECerts(st, mode, rep)
	if st != nil {
		pending := in.openPendingRevocations(ctx, st, mode, rep)
		in.sessions = config.SessionStore(st, rt.File.Store.RevocationCacheTTL, pending)
		in.keys = config.KeyStore(st)
		in.buildRisk(st, mode, rep)
		buildBrowser(rt, in.sessions, in.keys, in.logger, in.metrics, rep)
		in.buildDevices(st, rep)
		in.buildCAE(ctx, st, mode)
		in.buildSignals(st, rep)
		in.buildAdmin(st, rep)
		if mode == assembleServe && rt.File.Store.Backend == "embedded" {
			in.serveOperatorSocket(st)
		}
	}
	in.buildAWS(ctx, rep)
	setBearer(&rt.Proxy, in.bearer)
	setRisk(&rt.Proxy, in.risk)
	setAWS(&rt.Proxy, in.aws)
	setDevices(&rt.Proxy, in.devices)
	setGuard(&rt.Proxy, in.cae)
	setSignals(&rt.Proxy, in.signals)
	setAdmin(&rt.Proxy, in.admin)
	if !rep.Failed() {
		// Only now: with a component missing, proxy.New would report that
		// instead of the component's own problem.
		srv, err := proxy.New(rt.Proxy, proxy.Options{
			Server: rt.Server, SigningKey: rt.SigningKey, PublishedKeys: rt.PublishedKeys,
			AssertionCacheSize: rt.AssertionCacheSize, Audit: in.audit, Logger: in.logger, Metrics: in.metrics,
			Tracer: in.tracer,
		})
		rep.Add("routes", err)
		in.server = srv
	}
	in.openListeners(mode, rep)
	if mode == assembleCheck {
		noteNetwork(rt.File, rep)
	}
	if err := rep.Err(); err != nil {
		in.close()
		return nil, rep, err
	}
	return in, rep, nil
}

// serveOperatorSocket shares the embedded store, which this process holds
// locked, with the operator's commands (ztproxy risk, ztproxy keys) on a
// Unix socket next to its file. A change made there is logged and applied
// to this process's risk cache at once. Without the socket the commands
// wait until ztproxy stops, so a failure is a warning, not a start-up error.
func (in *instance) serveOperatorSocket(st store.Store) {
	op, ok := st.(store.Operator)
	if !ok {
		return
	}
	path := store.OperatorSocketPath(in.rt.File.Store.Path)
	srv, err := store.ServeOperator(path, op, func(what, userID string) {
		if what == store.DeviceChanged {
			in.logger.Info("operator command", "change", what, "device", userID)
			if in.devices != nil {
				in.devices.Forget(userID)
			}
			return
		}
		in.logger.Info("operator command", "change", what, "principal", userID)
		if in.risk != nil {
			in.risk.Invalidate(userID)
		}
	})
	if err != nil {
		in.logger.Warn("operator socket not started: ztproxy risk, keys and devices must wait until this process stops", "path", path, "err", err)
		return
	}
	in.closers = append(in.closers, func() { srv.Close() })
}

// discardLogger is the log of check-config: it reports problems, not
// events.
var discardLogger = slog.New(slog.DiscardHandler)

// logWarnings logs the configuration's warnings (a world-readable secret
// file), at start-up and on every reload.
func logWarnings(logger *slog.Logger, warnings []config.Problem) {
	for _, w := range warnings {
		logger.Warn("configuration warning", "path", w.Path, "line", w.Line, "problem", w.Message)
	}
}

// openAudit opens the audit destination (serve) or checks that it could
// be opened (check-config, which must not create the file).
func (in *instance) openAudit(mode startMode, stdout, stderr io.Writer, rep *config.Report) {
	output := in.rt.File.Audit.Output
	if mode == assembleCheck {
		if output != "stdout" && output != "stderr" {
			rep.Add("audit.output", config.ProbeAppendFile(output))
		}
		return
	}
	audit, closeAudit, err := newAuditLogger(output, stdout, stderr)
	if err != nil {
		rep.Add("audit.output", err)
		return
	}
	in.audit = audit
	in.closers = append(in.closers, closeAudit)
}

// buildCerts loads the TLS material, or returns nil for a plaintext
// listener. The manager is not running yet.
func buildCerts(rt *config.Runtime, logger *slog.Logger, rep *config.Report) *certs.Manager {
	if rt.Certs == nil || rt.Certs.ACME != nil {
		return nil // tls.acme: built with the store (buildACMECerts)
	}
	cfg := *rt.Certs
	cfg.Logger = logger
	m, err := certs.New(cfg)
	rep.Add("tls", err)
	return m
}

// buildBearer builds the bearer verifier, or returns nil when no identity
// provider accepts bearer tokens.
func buildBearer(rt *config.Runtime, logger *slog.Logger, metrics *metrics.Metrics, rep *config.Report) *authn.BearerVerifier {
	v, err := newBearer(rt, logger, metrics)
	rep.Add("idps", err)
	return v
}

// buildBrowser builds browser sign-in into rt.Proxy when the config has it.
func buildBrowser(rt *config.Runtime, sessions authn.SessionStore, keys authn.WebAuthnStore, logger *slog.Logger, metrics *metrics.Metrics, rep *config.Report) {
	rep.Add("idps", setBrowser(&rt.Proxy, rt, sessions, keys, logger, metrics))
}

// openStore opens the store (serve) or checks it (check-config), and
// returns nil when that failed.
func (in *instance) openStore(ctx context.Context, mode startMode, rep *config.Report) store.Store {
	f := in.rt.File
	storePath := "store"
	if f.Store.Backend == "embedded" {
		storePath = "store.path"
	}
	if mode == assembleServe {
		st, err := config.OpenTracedStore(ctx, f, in.metrics.ObserveStoreCall, in.tracer)
		if err != nil {
			rep.Add(storePath, err)
			return nil
		}
		in.closers = append(in.closers, func() { st.Close() })
		return st
	}
	check, err := config.CheckStore(ctx, f)
	if err != nil {
		rep.Add(storePath, err)
		return nil
	}
	in.closers = append(in.closers, func() { check.Store.Close() })
	switch {
	case f.Store.Backend == "dynamodb":
		rep.Note("store", "DynamoDB is not contacted: that it is reachable, that the tables exist (ztproxy store init) and that the credentials may use them is not checked")
	case check.Held:
		rep.Note("store.path", "%s is held by another process now (a running ztproxy?); a second serve would wait 2s for it and fail", f.Store.Path)
	default:
		rep.Note("store.path", "%s is free now; serve takes an exclusive lock on it at start", f.Store.Path)
	}
	return check.Store
}

// openPendingRevocations opens the revocation journal and retries what it
// holds in the background until close (serve), or checks the journal file
// (check-config). Sign-outs the store could not record wait there.
func (in *instance) openPendingRevocations(ctx context.Context, st store.Store, mode startMode, rep *config.Report) *store.PendingRevocations {
	f := in.rt.File
	if mode == assembleCheck {
		held, err := config.CheckRevocationJournal(f)
		switch {
		case err != nil:
			rep.Add("store.revocation_journal", err)
		case held:
			rep.Note("store.revocation_journal", "%s is held by another process now; each replica needs its own journal", f.Store.RevocationJournal)
		}
		return nil
	}
	pending, err := config.OpenPendingRevocations(f, st, in.metrics.SetRevocationsPending, in.metrics.ObserveRevocationRetry)
	if err != nil {
		rep.Add("store.revocation_journal", err)
		return nil
	}
	retryCtx, stopRetries := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { pending.Run(retryCtx); close(done) }()
	in.closers = append(in.closers, func() {
		// What is still pending stays in the journal for the next run.
		stopRetries()
		<-done
		pending.Close()
	})
	return pending
}

// buildRisk builds the risk engine (and opens the GeoIP database), or
// leaves it nil when scoring is off. Its write-behind loop runs until
// close.
func (in *instance) buildRisk(st store.Store, mode startMode, rep *config.Report) {
	risk, err := config.NewRiskEngine(in.rt.File, st, config.RiskHooks{OnStoreCall: in.metrics.ObserveStoreCall, OnCache: in.metrics.ObserveRiskCache}, in.logger)
	if err != nil {
		rep.Add("risk", err)
		return
	}
	if risk == nil {
		return
	}
	in.risk = risk
	flush := 10 * time.Second
	if mode == assembleCheck {
		flush = time.Second // nothing was observed
	}
	logger := in.logger
	in.closers = append(in.closers, func() {
		// Runs before the store closes: pending observations are flushed
		// after the listeners drained.
		ctx, cancel := context.WithTimeout(context.Background(), flush)
		defer cancel()
		if err := risk.Close(ctx); err != nil {
			logger.Error("risk engine: final flush failed", "err", err)
		}
	})
}

// buildDevices builds the device inventory over the store, or leaves it
// nil when devices are off. It outlives reloads (its cache).
func (in *instance) buildDevices(st store.Store, rep *config.Report) {
	inv, err := newDeviceInventory(in.rt.File, st, in.logger, in.metrics)
	rep.Add("devices", err)
	in.devices = inv
}

// buildAWS builds the STS minter (reading the AWS shared config and
// environment, which needs no network), or leaves it nil without roles.
func (in *instance) buildAWS(ctx context.Context, rep *config.Report) {
	minter, err := newAWSMinter(ctx, in.rt, in.metrics, in.logger)
	rep.Add("aws", err)
	in.aws = minter
}

// openListeners binds the listeners (serve). check-config binds each for a
// moment only, to say whether it is free now; that is a note either way,
// since it can change before serve starts.
func (in *instance) openListeners(mode startMode, rep *config.Report) {
	f := in.rt.File
	addrs := []struct{ path, addr string }{{"listen", f.Listen}, {"admin_listen", f.AdminListen}, {"ext_authz_listen", f.ExtAuthzListen}}
	for _, a := range addrs {
		if a.addr == "" {
			continue
		}
		if mode == assembleCheck {
			noteListener(rep, a.path, a.addr)
			continue
		}
		if rep.Failed() {
			return // nothing will serve: do not take the ports
		}
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			rep.Add(a.path, err)
			return
		}
		in.closers = append(in.closers, func() { ln.Close() })
		switch a.path {
		case "listen":
			in.listeners.Public = ln
		case "admin_listen":
			in.listeners.Admin = ln
		default:
			in.listeners.ExtAuthz = ln
		}
	}
}

// noteListener binds addr for a moment and notes whether it is free now.
func noteListener(rep *config.Report, path, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		rep.Note(path, "%s cannot be bound now (%v); serve cannot start while this lasts (a running ztproxy?)", addr, unwrapOpError(err))
		return
	}
	ln.Close()
	rep.Note(path, "%s is free now; serve binds it at start", addr)
}

// noteNetwork notes the network peers check-config does not contact.
// serve does not contact them at start either: it starts while they are
// down and reaches them on first use.
func noteNetwork(f *config.File, rep *config.Report) {
	for i, idp := range f.IdPs {
		rep.Note(fmt.Sprintf("idps[%d].issuer", i), "%s is not contacted: discovery and signing keys are fetched on first use", idp.Issuer)
	}
	for i, source := range f.Assertion.TrustedJWKS {
		if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
			rep.Note(fmt.Sprintf("assertion.trusted_jwks[%d]", i), "%s is not fetched: it is fetched on first use", source)
		}
	}
	if len(f.AWS.Roles) > 0 {
		rep.Note("aws", "STS is not called: the roles' trust policies and the proxy's own AWS credentials are used on first use only")
	}
}

// unwrapOpError drops net.OpError's repetition of the address.
func unwrapOpError(err error) error {
	if op, ok := err.(*net.OpError); ok && op.Err != nil {
		return op.Err
	}
	return err
}

// printNotes prints check-config's warnings and notes under its verdict.
func printNotes(w io.Writer, warnings, notes []config.Problem) {
	for _, p := range warnings {
		fmt.Fprintf(w, "  warning: %s\n", p.String())
	}
	for _, p := range notes {
		fmt.Fprintf(w, "  note: %s\n", p.String())
	}
}
