package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// benchPolicies returns about n realistic Cedar policies: the core ones that
// decide the benchmark's routes (group permits, device SPIFFE ids, risk-based
// step-up and blocking) and, for each filler route, a group permit, an
// off-hours rule for contractors, a network-range rule and a write rule. All
// are evaluated by Cedar on every request (scope first), as in production.
func benchPolicies(n int, fillerRoutes []string) string {
	var b strings.Builder
	core := []string{
		`@id("eng-uses-app")
@reason("the app is for engineers")
permit (principal, action in [Action::"GET", Action::"HEAD", Action::"POST"], resource == Route::"app")
when { principal in Group::"eng" && context.identity.email_verified };`,
		`@id("api-read-for-engineers")
@reason("engineers may read the API")
permit (principal, action in [Action::"GET", Action::"HEAD"], resource == Route::"api")
when { principal in Group::"eng" };`,
		`@id("api-write-for-admins")
permit (principal, action, resource == Route::"api") when { principal in Group::"admins" };`,
		`@id("devices-by-spiffe")
permit (principal, action, resource == Route::"devices")
when { context.device.present && context.device.spiffe_id like "spiffe://ztproxy.dev/device/*" };`,
		`@id("api-writes-need-fresh-mfa")
@step_up("mfa")
@reason("changes need a second factor within the last 15 minutes")
forbid (principal, action in [Action::"POST", Action::"PUT", Action::"PATCH", Action::"DELETE"], resource == Route::"api")
unless { context.auth.mfa && context.auth.age_seconds < 900 };`,
		// Scoped to users: a service (mTLS) identity stays "new_user" (40)
		// forever, since only low-risk or fresh-MFA requests teach a profile,
		// so any sustained rate (velocity, 30) would make it "high".
		`@id("block-high-risk")
@reason("this sign-in looks too risky")
forbid (principal, action, resource) when { context.risk.level == "high" && context.auth.kind != "mtls" };`,
		`@id("browser-medium-risk-needs-fresh-mfa")
@step_up("mfa")
@reason("this request looks unusual for you; confirm with your second factor")
forbid (principal, action, resource == Route::"app")
when { context.risk.level == "medium" && !(context.auth.mfa && context.auth.age_seconds < 900) };`,
		`@id("no-interns-on-admin-paths")
forbid (principal, action, resource)
when { principal in Group::"interns" && context.http.path like "/admin*" };`,
		`@id("block-known-bad-agents")
forbid (principal, action, resource)
when { context.http.user_agent like "*sqlmap*" || context.http.user_agent like "*nikto*" };`,
		`@id("devices-must-be-managed-for-prod")
forbid (principal, action, resource == Route::"prod-console")
unless { context.device.present && context.device.managed };`,
	}
	count := 0
	for _, p := range core {
		if count >= n {
			break
		}
		b.WriteString(p + "\n\n")
		count++
	}
	groups := []string{"eng", "sales", "finance", "support", "ops", "hr"}
	for i := 0; count < n; i++ {
		r := fmt.Sprintf("filler-%d", i)
		if len(fillerRoutes) > 0 {
			r = fillerRoutes[i%len(fillerRoutes)]
		}
		g := groups[i%len(groups)]
		var p string
		switch i % 4 {
		case 0:
			p = fmt.Sprintf("@id(%q)\npermit (principal, action in [Action::\"GET\", Action::\"HEAD\"], resource == Route::%q)\nwhen { principal in Group::%q };", fmt.Sprintf("p%03d-%s-reads-%s", i, g, r), r, g)
		case 1:
			p = fmt.Sprintf("@id(%q)\nforbid (principal, action, resource == Route::%q)\nwhen { principal in Group::\"contractors\" && (context.time.hour < 7 || context.time.hour > 19) };", fmt.Sprintf("p%03d-contractors-office-hours-%s", i, r), r)
		case 2:
			p = fmt.Sprintf("@id(%q)\nforbid (principal, action, resource == Route::%q)\nunless { context.network.client_ip.isInRange(ip(\"127.0.0.0/8\")) || context.network.client_ip.isInRange(ip(\"10.%d.0.0/16\")) || context.device.present };", fmt.Sprintf("p%03d-corp-network-%s", i, r), r, i%250)
		case 3:
			p = fmt.Sprintf("@id(%q)\npermit (principal, action in [Action::\"POST\", Action::\"PUT\", Action::\"DELETE\"], resource == Route::%q)\nwhen { principal in Group::%q && context.auth.mfa && context.risk.score < 30 };", fmt.Sprintf("p%03d-%s-writes-%s", i, g, r), r, g)
		}
		b.WriteString(p + "\n\n")
		count++
	}
	return b.String()
}

// fillerRoutes returns n route names and YAML entries on their own hosts.
func fillerRoutes(n int, upstream string) ([]string, string) {
	var names []string
	var y strings.Builder
	kinds := []string{"browser", "bearer"}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		names = append(names, name)
		fmt.Fprintf(&y, "  - {name: %s, host: 127.0.0.1, path_prefix: /%s, upstream: %q, auth: %s}\n", name, name, upstream, kinds[i%2])
	}
	return names, y.String()
}

type ztpConfig struct {
	listen, admin, external string
	tls                     bool
	certDir                 string
	issuer                  string
	clientSecret            string
	stateDir                string
	routes                  string // YAML list entries
	policyFile              string
	extra                   string // top-level YAML blocks (e.g. tracing:), before routes
}

func (z ztpConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin_listen: %q\nexternal_url: %q\n", z.listen, z.admin, z.external)
	if z.tls {
		fmt.Fprintf(&b, "tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: request}\n",
			filepath.Join(z.certDir, "server.pem"), filepath.Join(z.certDir, "server-key.pem"), filepath.Join(z.certDir, "ca.pem"))
	} else {
		b.WriteString("insecure_plaintext: true\n")
	}
	fmt.Fprintf(&b, "policies: [%q]\n", z.policyFile)
	fmt.Fprintf(&b, `idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: %q, audiences: [%q], scopes: [openid, email, profile, groups, offline_access]}
session:
  secrets: ["0123456789abcdef0123456789abcdef-bench"]
  lifetime: 12h
  idle_timeout: 1h
store: {backend: embedded, path: %q}
risk: {enabled: true}
assertion: {ttl: 60s}
audit: {output: %q}
log: {level: info, format: json}
server: {pprof: true}          # /debug/pprof on the loopback admin port, for traces during a run
`, z.issuer, z.clientSecret, apiResource, filepath.Join(z.stateDir, "state.db"), filepath.Join(z.stateDir, "audit.log"))
	b.WriteString(z.extra)
	b.WriteString("routes:\n")
	b.WriteString(z.routes)
	return b.String()
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}

// nginxConf is a reverse proxy with a keepalive upstream pool on plaintext
// and on TLS with a required client certificate (the fair pair for
// ztproxy's mTLS route). Access log on (to a file), as ztproxy and
// oauth2-proxy also log every request.
func nginxConf(dir, plainAddr, tlsAddr, upstream, certDir string, worker int) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	temp := ""
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		temp += fmt.Sprintf("    %s_temp_path %s;\n", k, filepath.Join(dir, "tmp", k))
	}
	return fmt.Sprintf(`%sworker_processes %d;
error_log %s warn;
pid %s;
events { worker_connections 4096; }
http {
%s    access_log %s;
    keepalive_requests 1000000;
    upstream app {
        server %s;
        keepalive 128;
    }
    server {
        listen %s;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
    server {
        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_client_certificate %s;
        ssl_verify_client on;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Client-Cert-DN $ssl_client_s_dn;
        }
    }
}
`, user, worker, filepath.Join(dir, "error.log"), filepath.Join(dir, "nginx.pid"), temp, filepath.Join(dir, "access.log"),
		upstream, plainAddr, tlsAddr,
		filepath.Join(certDir, "server.pem"), filepath.Join(certDir, "server-key.pem"), filepath.Join(certDir, "ca.pem"))
}

// wrkScript sets the candidate's headers and counts every response that is
// not 2xx (wrk's own "Non-2xx or 3xx responses" counts only >= 400, so a
// redirect to sign-in would slip through).
func wrkScript(headers map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.headers[\"User-Agent\"] = %q\n", benchUA)
	for k, v := range headers {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, v)
	}
	b.WriteString(`local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("BENCH_NON2XX %d\n", total))
end
`)
	return b.String()
}
