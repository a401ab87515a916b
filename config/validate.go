package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Containers often lack /usr/share/zoneinfo; timezone must still load.
)

// validate runs every check, recording problems in c and canonicalising f
// as Validate documents. The order of the checks only matters where one
// uses what another filled in (Location before the policy check).
func (f *File) validate(opts Options, c *collector) {
	if base, err := filepath.Abs(f.BaseDir); err == nil {
		f.BaseDir = base
	}
	f.checkMode(c)
	f.checkListeners(c)
	if f.ExtAuthzListen != "" {
		checkHostPort(c, "ext_authz_listen", f.ExtAuthzListen)
	}
	f.checkExternalURL(c)
	f.checkTLS(c)
	f.checkTrustedProxies(c)
	f.checkTimezone(c)
	f.checkPolicies(c, opts)
	f.checkIdPs(c)
	f.checkRoutes(c)
	f.checkSidecar(c)
	f.checkSession(c)
	f.checkWebAuthn(c)
	f.checkAssertion(c)
	f.checkTracing(c)
	f.checkServer(c)
	f.checkOutputs(c)
	f.checkStore(c)
	f.checkRisk(c)
	f.checkAWS(c)
	f.checkDevices(c)
	f.Warnings = c.warningList()
}

// checkRisk checks the risk engine settings.
func (f *File) checkRisk(c *collector) {
	r := &f.Risk
	w := r.Weights
	weights := []struct {
		name string
		v    int
	}{{"new_network", w.NewNetwork}, {"new_user_agent", w.NewUserAgent}, {"new_device", w.NewDevice},
		{"unusual_hour", w.UnusualHour}, {"velocity", w.Velocity}, {"failed_auth", w.FailedAuth},
		{"impossible_travel", w.ImpossibleTravel}, {"flag_watch", w.FlagWatch}, {"flag_compromised", w.FlagCompromised},
		{"device_other_owner", w.DeviceOtherOwner}, {"device_posture_stale", w.DevicePostureStale}, {"device_unenrolled", w.DeviceUnenrolled}}
	for _, wt := range weights {
		if wt.v < 0 || wt.v > 100 {
			c.add("risk.weights."+wt.name, "must be between 0 and 100")
		}
	}
	if r.Thresholds.Medium <= 0 || r.Thresholds.High <= r.Thresholds.Medium || r.Thresholds.High > 100 {
		c.add("risk.thresholds", "need 0 < medium < high <= 100 (got %d, %d)", r.Thresholds.Medium, r.Thresholds.High)
	}
	if r.UnknownUserScore < 0 || r.UnknownUserScore > 100 {
		c.add("risk.unknown_user_score", "must be between 0 and 100")
	}
	durations := []struct {
		name string
		d    time.Duration
	}{{"profile_ttl", r.ProfileTTL}, {"flag_ttl", r.FlagTTL}, {"flush_interval", r.FlushInterval},
		{"network_window", r.NetworkWindow}, {"hour_half_life", r.HourHalfLife}, {"idle_evict", r.IdleEvict}}
	for _, dd := range durations {
		if dd.d <= 0 {
			c.add("risk."+dd.name, "must be greater than 0")
		}
	}
	if r.HourHalfLife > 0 && r.HourHalfLife < 72*time.Hour {
		// The histogram decays by forward scaling; a short half-life would
		// exhaust the stored number range within months.
		c.add("risk.hour_half_life", "must be at least 72h")
	}
	checkCacheBound(c, "risk.max_users", r.MaxUsers)
	checkCacheBound(c, "caches.verified_tokens", f.Caches.VerifiedTokens)
	checkCacheBound(c, "caches.assertions", f.Caches.Assertions)
	switch r.OnStoreError {
	case "step_up", "deny", "allow_cached":
	default:
		c.add("risk.on_store_error", "must be step_up, deny or allow_cached, not %q", r.OnStoreError)
	}
	if r.GeoIPDatabase != "" {
		f.checkFile(c, "risk.geoip_database", &r.GeoIPDatabase)
	}
}

// Bounds of the per-user and per-token cache sizes: below the minimum a
// cache thrashes (each is split into 16 or 32 shards); above the maximum
// it costs gigabytes.
const (
	minCacheEntries = 64
	maxCacheEntries = 10_000_000
)

// checkCacheBound checks one cache size.
func checkCacheBound(c *collector, path string, n int) {
	if n < minCacheEntries || n > maxCacheEntries {
		c.add(path, "must be between %d and %d (got %d)", minCacheEntries, maxCacheEntries, n)
	}
}

// DefaultRevocationJournal is the name of the revocation journal a
// DynamoDB replica keeps next to store.path unless
// store.revocation_journal names another file.
const DefaultRevocationJournal = "ztproxy-revocations.db"

// checkStore checks the state backend.
func (f *File) checkStore(c *collector) {
	s := &f.Store
	switch s.Backend {
	case "embedded":
		if s.Path == "" {
			c.add("store.path", "required for the embedded store")
			break
		}
		s.Path = f.resolve(s.Path)
		if dir := filepath.Dir(s.Path); !isDir(dir) {
			c.add("store.path", "%s: no such directory", dir)
		}
	case "dynamodb":
		if s.Region == "" && s.Endpoint == "" {
			c.add("store.region", "required for dynamodb (or set store.endpoint for a local server)")
		}
		if s.Endpoint != "" {
			if _, msg := checkURL(s.Endpoint, urlRules{}); msg != "" {
				c.add("store.endpoint", "%s", msg)
			}
		}
		if s.RevocationJournal == "" {
			s.RevocationJournal = filepath.Join(filepath.Dir(f.resolve(s.Path)), DefaultRevocationJournal)
		}
	default:
		c.add("store.backend", "must be embedded or dynamodb, not %q", s.Backend)
	}
	if s.RevocationJournal != "" {
		s.RevocationJournal = f.resolve(s.RevocationJournal)
		if dir := filepath.Dir(s.RevocationJournal); !isDir(dir) {
			c.add("store.revocation_journal", "%s: no such directory", dir)
		}
	}
	if s.RevocationCacheTTL <= 0 || s.RevocationCacheTTL > 5*time.Minute {
		c.add("store.revocation_cache_ttl", "must be between 1ns and 5m (replicas see a sign-out within it)")
	}
}

func (f *File) checkMode(c *collector) {
	switch f.Mode {
	case ModeProxy, ModeSidecar:
	default:
		c.add("mode", "must be proxy or sidecar, not %q", f.Mode)
	}
}

func (f *File) checkListeners(c *collector) {
	if f.Mode == ModeSidecar && f.AdminListen == "" {
		// A sidecar's minimal config: the admin listener defaults to
		// loopback for the probes.
		f.AdminListen = "127.0.0.1:9090"
	}
	publicHost, publicPort, publicOK := checkHostPort(c, "listen", f.Listen)
	adminHost, adminPort, adminOK := checkHostPort(c, "admin_listen", f.AdminListen)
	if !publicOK || !adminOK || publicPort != adminPort || publicPort == "0" {
		return
	}
	if publicHost == adminHost || isWildcardHost(publicHost) || isWildcardHost(adminHost) {
		c.add("admin_listen", "must differ from listen (%s): the admin endpoints must not be public", f.Listen)
	}
}

// checkHostPort checks a listen address of the form host:port.
func checkHostPort(c *collector, path, addr string) (host, port string, ok bool) {
	if addr == "" {
		c.add(path, "required: host:port, such as \":8443\"")
		return "", "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.add(path, "must be host:port, such as \":8443\", not %q", addr)
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port[0] == '+' {
		c.add(path, "port must be a number from 0 to 65535, not %q", port)
		return "", "", false
	}
	if strings.ContainsAny(host, " \t/") {
		c.add(path, "host %q is not a host name or IP address", host)
		return "", "", false
	}
	return host, port, true
}

func isWildcardHost(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

func (f *File) checkExternalURL(c *collector) {
	if f.ExternalURL == "" && f.Mode == ModeSidecar && f.Listen != "" {
		// A sidecar has no sign-in pages; its assertions' issuer is its
		// own listener.
		host, port, err := net.SplitHostPort(f.Listen)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "localhost"
			}
			scheme := "https"
			if f.InsecurePlaintext {
				scheme = "http"
			}
			f.ExternalURL = scheme + "://" + net.JoinHostPort(host, port)
		}
	}
	if f.ExternalURL == "" {
		c.add("external_url", "required: the https URL users reach ztproxy at")
		return
	}
	if _, msg := checkURL(f.ExternalURL, urlRules{secure: true, noQuery: true, noPath: true}); msg != "" {
		c.add("external_url", "%s", msg)
		return
	}
	f.ExternalURL = strings.TrimSuffix(f.ExternalURL, "/")
}

func (f *File) checkTLS(c *collector) {
	t := &f.TLS
	switch t.ClientAuth {
	case ClientAuthNone, ClientAuthRequest, ClientAuthRequire:
	default:
		c.add("tls.client_auth", "must be none, request or require, not %q", t.ClientAuth)
	}
	if f.InsecurePlaintext {
		if t.CertFile != "" || t.KeyFile != "" {
			c.add("insecure_plaintext", "cannot be combined with tls.cert_file and tls.key_file; remove one or the other")
		}
		if t.ClientAuth == ClientAuthRequest || t.ClientAuth == ClientAuthRequire {
			c.add("tls.client_auth", "client certificates need TLS, but insecure_plaintext is true")
		}
	} else if t.ACME == nil {
		if t.CertFile == "" {
			c.add("tls.cert_file", "required (unless insecure_plaintext is true)")
		}
		if t.KeyFile == "" {
			c.add("tls.key_file", "required (unless insecure_plaintext is true)")
		}
	}
	if t.ClientCAFile == "" && !f.Devices.Enabled && (t.ClientAuth == ClientAuthRequest || t.ClientAuth == ClientAuthRequire) {
		c.add("tls.client_ca_file", "required when client_auth is %s", t.ClientAuth)
	}
	f.checkFile(c, "tls.cert_file", &t.CertFile)
	if f.checkFile(c, "tls.key_file", &t.KeyFile) {
		warnWorldReadableFile(c, "tls.key_file", t.KeyFile)
	}
	f.checkFile(c, "tls.client_ca_file", &t.ClientCAFile)
	if t.ACME != nil {
		f.checkACME(c)
	}
}

func (f *File) checkTrustedProxies(c *collector) {
	f.TrustedProxyPrefixes = nil
	for i, s := range f.TrustedProxies {
		path := indexPath("trusted_proxies", i)
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			addr, addrErr := netip.ParseAddr(s)
			if addrErr != nil || addr.Zone() != "" {
				c.add(path, "must be a CIDR such as 10.0.0.0/8 or an IP address, not %q", s)
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		if prefix.Bits() == 0 {
			c.add(path, "%s trusts every address, which lets any client forge X-Forwarded-For", s)
			continue
		}
		f.TrustedProxyPrefixes = append(f.TrustedProxyPrefixes, prefix.Masked())
	}
}

func (f *File) checkTimezone(c *collector) {
	f.Location = time.UTC
	loc, err := time.LoadLocation(f.Timezone)
	if err != nil || f.Timezone == "Local" {
		c.add("timezone", "unknown time zone %q: use an IANA name such as UTC or Europe/Berlin", f.Timezone)
		return
	}
	f.Location = loc
}

func (f *File) checkServer(c *collector) {
	s := f.Server
	if s.ReadHeaderTimeout <= 0 {
		c.add("server.read_header_timeout", "must be greater than 0: it bounds how long a slow client can hold a connection")
	}
	for _, d := range []struct {
		path  string
		value time.Duration
	}{
		{"server.read_timeout", s.ReadTimeout},
		{"server.write_timeout", s.WriteTimeout},
		{"server.idle_timeout", s.IdleTimeout},
		{"server.shutdown_grace", s.ShutdownGrace},
	} {
		if d.value < 0 {
			c.add(d.path, "must not be negative")
		}
	}
	if s.MaxHeaderBytes <= 0 {
		c.add("server.max_header_bytes", "must be greater than 0")
	}
	if s.MaxBodyBytes < 0 {
		c.add("server.max_body_bytes", "must not be negative (0 means unlimited)")
	}
	checkUpstreamTransport(c, "server.upstream_transport", s.UpstreamTransport, false)
}

// checkOutputs checks the audit and log sections.
func (f *File) checkOutputs(c *collector) {
	switch f.Audit.Output {
	case "stdout", "stderr":
	case "":
		c.add("audit.output", "required: stdout, stderr or a file name")
	default:
		f.Audit.Output = f.resolve(f.Audit.Output)
		if dir := filepath.Dir(f.Audit.Output); !isDir(dir) {
			c.add("audit.output", "%s: no such directory", dir)
		} else if isDir(f.Audit.Output) {
			c.add("audit.output", "%s: is a directory", f.Audit.Output)
		}
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.add("log.level", "must be debug, info, warn or error, not %q", f.Log.Level)
	}
	switch f.Log.Format {
	case "json", "text":
	default:
		c.add("log.format", "must be json or text, not %q", f.Log.Format)
	}
}
