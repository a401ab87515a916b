package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// snapshot is one consistent, immutable set of TLS material. Handshakes
// read the current snapshot; reloads build a new one and swap it in.
type snapshot struct {
	digest        [sha256.Size]byte
	cert          *tls.Certificate
	clientCAs     *x509.CertPool // nil when no client CA file is configured
	clientCACerts []*x509.Certificate
	deviceCACerts []*x509.Certificate // the device CA (devices.ca_cert_file)
}

// Manager serves the server certificate and client CA pool and reloads
// them when the files change. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	current atomic.Pointer[snapshot]
	hook    atomic.Pointer[func(error)]
	// acme serves the server certificate when tls.acme is configured;
	// snapshots then carry no cert.
	acme *acmeSource

	// reloadMu serialises reloads so that a SIGHUP and a poll cannot race
	// to swap in snapshots out of order.
	reloadMu sync.Mutex
	// lastFailure identifies the content or read error of the last failed
	// poll, so a file that stays broken is reported once, not every tick.
	lastFailure string
}

// New validates cfg, loads the files and returns a Manager serving them. A
// missing or malformed file is an error that names the file.
func New(cfg Config) (*Manager, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg}
	if cfg.ACME != nil {
		acme, err := newACMESource(*cfg.ACME)
		if err != nil {
			return nil, err
		}
		m.acme = acme
	}
	files, err := readFiles(&m.cfg)
	if err != nil {
		return nil, err
	}
	snap, err := m.build(files)
	if err != nil {
		return nil, err
	}
	m.current.Store(snap)
	m.logLoaded("tls material loaded", snap)
	return m, nil
}

// build parses files into a snapshot.
func (m *Manager) build(files fileSet) (*snapshot, error) {
	snap := &snapshot{digest: files.digest()}
	var cert *tls.Certificate
	var certErr error
	if m.acme == nil {
		cert, certErr = loadServerCertificate(&m.cfg, files)
	}
	var caErr error
	if m.cfg.ClientCAFile != "" {
		snap.clientCACerts, caErr = parseCertificates("tls.client_ca_file "+m.cfg.ClientCAFile, files.clientCA)
	}
	var deviceErr error
	if m.cfg.DeviceCAFile != "" {
		snap.deviceCACerts, deviceErr = parseCertificates("devices.ca_cert_file "+m.cfg.DeviceCAFile, files.deviceCA)
	}
	if err := errors.Join(certErr, caErr, deviceErr); err != nil {
		return nil, err
	}
	snap.cert = cert
	if all := append(append([]*x509.Certificate(nil), snap.clientCACerts...), snap.deviceCACerts...); len(all) > 0 {
		snap.clientCAs = poolOf(all)
	}
	return snap, nil
}

// logLoaded records what a snapshot serves and warns about expired
// certificates. Only public certificate facts are logged, never key bytes.
func (m *Manager) logLoaded(msg string, snap *snapshot) {
	if snap.cert == nil {
		m.cfg.Logger.Info(msg, "acme_domains", m.cfg.ACME.Domains,
			"client_cas", len(snap.clientCACerts), "device_cas", len(snap.deviceCACerts))
		return
	}
	leaf := snap.cert.Leaf
	fp := sha256.Sum256(leaf.Raw)
	m.cfg.Logger.Info(msg,
		"cert_file", m.cfg.CertFile,
		"subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter,
		"fingerprint_sha256", hex.EncodeToString(fp[:]),
		"client_cas", len(snap.clientCACerts), "device_cas", len(snap.deviceCACerts))
	now := m.cfg.Now()
	if now.After(leaf.NotAfter) {
		m.cfg.Logger.Warn("server certificate has expired", "cert_file", m.cfg.CertFile, "not_after", leaf.NotAfter)
	}
	for _, ca := range snap.clientCACerts {
		if now.After(ca.NotAfter) {
			m.cfg.Logger.Warn("client CA certificate has expired",
				"client_ca_file", m.cfg.ClientCAFile, "subject", ca.Subject.String(), "not_after", ca.NotAfter)
		}
	}
}

// SetReloadHook registers fn to be called after every reload attempt, with
// nil on success and the error on failure, so the caller can count metrics.
// It replaces any earlier hook; nil removes it. fn runs synchronously while
// the reload lock is held, so it must be quick and must not call Reload.
func (m *Manager) SetReloadHook(fn func(err error)) {
	if fn == nil {
		m.hook.Store(nil)
		return
	}
	m.hook.Store(&fn)
}

// Reload re-reads the files now, regardless of whether they changed. On
// failure the previous snapshot keeps serving and the error is returned.
func (m *Manager) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	files, err := readFiles(&m.cfg)
	if err != nil {
		m.lastFailure = readFailureKey(err)
		m.reportFailure(err)
		return err
	}
	if err := m.swap(files); err != nil {
		m.lastFailure = contentFailureKey(files)
		m.reportFailure(err)
		return err
	}
	return nil
}

// readFailureKey and contentFailureKey identify a failure so that Run
// reports a file that stays broken only once.
func readFailureKey(err error) string { return "read:" + err.Error() }

func contentFailureKey(files fileSet) string {
	digest := files.digest()
	return "content:" + hex.EncodeToString(digest[:])
}

// swap builds a snapshot from files and makes it current.
func (m *Manager) swap(files fileSet) error {
	snap, err := m.build(files)
	if err != nil {
		return err
	}
	m.current.Store(snap)
	m.lastFailure = ""
	m.logLoaded("tls material reloaded", snap)
	m.callHook(nil)
	return nil
}

// reportFailure logs a failed reload and tells the hook.
func (m *Manager) reportFailure(err error) {
	m.cfg.Logger.Error("tls reload failed; keeping the previous certificate", "error", err.Error())
	m.callHook(err)
}

func (m *Manager) callHook(err error) {
	if fn := m.hook.Load(); fn != nil {
		(*fn)(err)
	}
}

// Run polls the files every ReloadInterval until ctx is done and reloads
// when their content changes. Content that fails to load is reported
// once; the previous snapshot keeps serving until a good one appears.
func (m *Manager) Run(ctx context.Context) {
	if m.acme != nil {
		go m.acme.obtainAll(ctx, m.logACME)
	}
	ticker := time.NewTicker(m.cfg.ReloadInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			m.poll()
			m.reportACMERenewal()
		}
	}
}

// poll reloads if the files differ from the current snapshot.
func (m *Manager) poll() {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	files, err := readFiles(&m.cfg)
	if err != nil {
		// Files are often replaced non-atomically; a read error that
		// persists is reported once.
		key := readFailureKey(err)
		if key != m.lastFailure {
			m.lastFailure = key
			m.reportFailure(err)
		}
		return
	}
	if files.digest() == m.current.Load().digest {
		m.lastFailure = ""
		return
	}
	key := contentFailureKey(files)
	if key == m.lastFailure {
		return
	}
	if err := m.swap(files); err != nil {
		m.lastFailure = key
		m.reportFailure(err)
	}
}

// TLSConfig returns the server TLS configuration. Every handshake uses the
// current snapshot: GetCertificate serves its certificate and
// GetConfigForClient supplies its client CA pool. Callers may adjust the
// returned config before first use; each handshake works on a clone of it.
//
// Session resumption stays safe across CA reloads: crypto/tls re-verifies
// a resumed session's client chain against the current ClientCAs.
func (m *Manager) TLSConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		ClientAuth:     m.cfg.ClientAuth.tlsClientAuth(),
		ClientCAs:      m.current.Load().clientCAs,
		GetCertificate: m.getCertificate,
	}
	if m.acme != nil {
		base.NextProtos = withACMEProto(base.NextProtos)
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		perConn := base.Clone()
		perConn.GetConfigForClient = nil
		perConn.ClientCAs = m.current.Load().clientCAs
		if m.acme != nil && isALPNChallenge(hello) {
			// The ACME server's validation presents no client
			// certificate; the listener closes the connection after
			// the handshake, so no request is served on it.
			perConn.ClientAuth, perConn.ClientCAs = tls.NoClientCert, nil
		}
		return perConn, nil
	}
	return base
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.acme != nil {
		return m.acme.getCertificate(hello)
	}
	return m.current.Load().cert, nil
}

// Expiries returns the NotAfter of the current server leaf under "server"
// and, when a client CA bundle is configured, the earliest NotAfter in it
// under "client_ca" (and of the device CA under "device_ca"). It feeds a
// certificate-expiry gauge.
func (m *Manager) Expiries() map[string]time.Time {
	snap := m.current.Load()
	out := map[string]time.Time{}
	if snap.cert != nil {
		out["server"] = snap.cert.Leaf.NotAfter
	} else if t, ok := m.acme.earliestExpiry(); ok {
		out["server"] = t
	}
	for i, ca := range snap.clientCACerts {
		if i == 0 || ca.NotAfter.Before(out["client_ca"]) {
			out["client_ca"] = ca.NotAfter
		}
	}
	for i, ca := range snap.deviceCACerts {
		if i == 0 || ca.NotAfter.Before(out["device_ca"]) {
			out["device_ca"] = ca.NotAfter
		}
	}
	return out
}
