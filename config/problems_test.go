package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// head is the smallest valid top of a file; cases add the rest.
const head = `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
insecure_plaintext: true
`

// publicRoute is one route that needs no idp, session or policy.
const publicRoute = `routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: public}
`

// browserIdP is an idp usable by browser and bearer routes.
const browserIdP = `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret: s, audiences: [a]}
`

func TestProblems(t *testing.T) {
	td := testdataDir(t)
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"minimal is valid", head + publicRoute, nil},
		{"webauthn problems", head + publicRoute + `webauthn: {rp_id: "other.example.org", rp_name: "` + strings.Repeat("n", 65) + `", enroll_max_age: 2h}
`, []string{
			"webauthn.enroll_max_age: must be between 30s and 1h",
			"webauthn.rp_name: must be at most 64 characters",
			`webauthn.rp_id: "other.example.org" must be external_url's host "ztp.example.com" or a parent domain of it`,
		}},
		// Issue 23: every per-user and per-token cache has a count bound
		// that check-config validates.
		{"cache bounds", head + publicRoute + "risk: {max_users: 10, idle_evict: -1s}\ncaches: {verified_tokens: 0, assertions: 20000000}\n", []string{
			"risk.idle_evict: must be greater than 0",
			"risk.max_users: must be between 64 and 10000000 (got 10)",
			"caches.verified_tokens: must be between 64 and 10000000 (got 0)",
			"caches.assertions: must be between 64 and 10000000 (got 20000000)",
		}},
		{"cache bounds set", head + publicRoute + "risk: {max_users: 100000, idle_evict: 5m}\ncaches: {verified_tokens: 50000, assertions: 1000}\n", nil},
		{"aws cache bound", head + publicRoute + "aws: {cache_size: 5}\n", []string{"aws.cache_size: must be between 64 and 10000000 (got 5)"}},
		{"webauthn rp_id is a parent domain", head + publicRoute + "webauthn: {rp_id: example.com}\n", nil},
		{"webauthn rp_id with a port", head + publicRoute + "webauthn: {rp_id: \"ztp.example.com:8443\"}\n", []string{
			`webauthn.rp_id: "ztp.example.com:8443" must be a domain name (no scheme, port or IP address)`,
		}},
		{"webauthn rp_id on an IP external_url", strings.Replace(head, "https://ztp.example.com", "https://10.0.0.1", 1) + publicRoute + "webauthn: {rp_id: example.com}\n", []string{
			`webauthn.rp_id: external_url "https://10.0.0.1" is an IP address; browsers allow WebAuthn only on a domain name`,
		}},
		{"empty file", "", []string{
			`listen: required: host:port, such as ":8443"`,
			`admin_listen: required: host:port, such as ":8443"`,
			"external_url: required: the https URL users reach ztproxy at",
			"tls.cert_file: required (unless insecure_plaintext is true)",
			"tls.key_file: required (unless insecure_plaintext is true)",
			"routes: required: at least one route (or mode: sidecar)",
		}},
		{"bad mode", "mode: nope\n" + head + publicRoute, []string{`mode: must be proxy or sidecar, not "nope"`}},
		{"listen without port", `listen: "8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
insecure_plaintext: true
` + publicRoute, []string{`listen: must be host:port, such as ":8443", not "8443"`}},
		{"admin on the public listener", `listen: ":8443"
admin_listen: "127.0.0.1:8443"
external_url: https://ztp.example.com
insecure_plaintext: true
` + publicRoute, []string{"admin_listen: must differ from listen (:8443): the admin endpoints must not be public"}},
		{"external_url over http", `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: http://ztp.example.com
insecure_plaintext: true
` + publicRoute, []string{"external_url: must use https (http is allowed only for loopback hosts)"}},
		{"external_url with path", `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com/app
insecure_plaintext: true
` + publicRoute, []string{"external_url: must not have a path"}},
		{"external_url over http to loopback", `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: http://localhost:8443
insecure_plaintext: true
` + publicRoute, nil},
		{"tls problems", `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
tls:
  cert_file: certs/server.crt
  key_file: missing.key
  client_ca_file: nope.crt
  client_auth: sometimes
` + publicRoute, []string{
			"tls.key_file: " + td + "/missing.key: no such file",
			"tls.client_ca_file: " + td + "/nope.crt: no such file",
			`tls.client_auth: must be none, request or require, not "sometimes"`,
		}},
		{"client_auth without CA", `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
tls: {cert_file: certs/server.crt, key_file: certs/server.key, client_auth: require}
` + publicRoute, []string{"tls.client_ca_file: required when client_auth is require"}},
		{"plaintext with certificates", head + publicRoute + "tls: {cert_file: certs/server.crt, key_file: certs/server.key, client_auth: request, client_ca_file: certs/client-ca.crt}\n", []string{
			"insecure_plaintext: cannot be combined with tls.cert_file and tls.key_file; remove one or the other",
			"tls.client_auth: client certificates need TLS, but insecure_plaintext is true",
		}},
		{"trusted proxies", head + publicRoute + "trusted_proxies: [10.0.0.0/8, 10.0.0.300, 0.0.0.0/0, \"fe80::1%eth0\"]\n", []string{
			`trusted_proxies[1]: must be a CIDR such as 10.0.0.0/8 or an IP address, not "10.0.0.300"`,
			"trusted_proxies[2]: 0.0.0.0/0 trusts every address, which lets any client forge X-Forwarded-For",
			`trusted_proxies[3]: must be a CIDR such as 10.0.0.0/8 or an IP address, not "fe80::1%eth0"`,
		}},
		{"timezone", head + publicRoute + "timezone: Mars/Olympus\n", []string{
			`timezone: unknown time zone "Mars/Olympus": use an IANA name such as UTC or Europe/Berlin`,
		}},
		{"policies", head + publicRoute + "policies: [nothing/*.cedar, missing.cedar, policies, \"[\", \"\"]\n", []string{
			"policies[0]: " + td + "/nothing/*.cedar: matches no file",
			"policies[1]: " + td + "/missing.cedar: no such file",
			"policies[2]: " + td + "/policies: is a directory",
			"policies[3]: " + td + "/[: malformed glob pattern",
			"policies[4]: required: a file name or glob pattern",
		}},
		{"policies required", head + `routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: bearer}
idps: [{name: corp, issuer: "https://idp.example.com", audiences: [a]}]
`, []string{"policies: required: without policies every request to a non-public route is denied"}},
		{"idps", head + publicRoute + `idps:
  - name: Corp
    issuer: http://idp.example.com
    token_use: refresh
    client_id: web
    scopes: [email]
    extra_auth_params: {state: x, prompt: login}
    step_up: {}
  - name: corp2
    issuer: https://idp.example.com?x=1
    jwks_url: ftp://keys
    audiences: [""]
    client_secret: s
    groups_claim: ""
  - {name: corp2}
`, []string{
			`idps[0].name: "Corp" must match [a-z0-9-]+`,
			"idps[0].issuer: must use https (http is allowed only for loopback hosts)",
			`idps[0].token_use: must be empty, id or access, not "refresh"`,
			"idps[0].scopes: must include openid for browser sign-in",
			"idps[0].extra_auth_params.state: reserved: ztproxy sets this parameter itself",
			"idps[0].step_up: set acr_values, max_age or both",
			"idps[1].issuer: must not have a query",
			"idps[1].jwks_url: must be an absolute https URL",
			"idps[1].audiences[0]: must not be empty",
			"idps[1].groups_claim: required (the default is groups)",
			// A missing key sorts at the end of its block.
			"idps[1].client_id: required when client_secret is set",
			`idps[2].name: duplicate name "corp2" (also idps[1])`,
			"idps[2].issuer: required",
		}},
		// Issue 12.3: key material only over https (http for loopback).
		{"idp key refresh and plain http", head + publicRoute + `idps:
  - name: corp
    issuer: http://idp.example.com
    jwks_url: http://idp.example.com/keys
    audiences: [a]
    jwks_refresh_interval: 0s
    jwks_min_refetch_interval: 1h
    jwks_max_stale: 0s
  - {name: local, issuer: "http://127.0.0.1:9000", jwks_url: "http://localhost:9000/keys", audiences: [a], jwks_refresh_interval: 25h, jwks_min_refetch_interval: 500ms}
assertion:
  trusted_jwks: ["http://front.example.com/.ztp/jwks.json"]
  jwks_max_stale: 200h
`, []string{
			"idps[0].issuer: must use https (http is allowed only for loopback hosts)",
			"idps[0].jwks_url: must use https (http is allowed only for loopback hosts)",
			"idps[0].jwks_refresh_interval: must be between 1s and 24h0m0s, not 0s",
			"idps[0].jwks_max_stale: must be greater than 0 and at most 168h0m0s, not 0s",
			"idps[1].jwks_refresh_interval: must be between 1s and 24h0m0s, not 25h0m0s",
			"idps[1].jwks_min_refetch_interval: must be between 1s and jwks_refresh_interval (25h0m0s), not 500ms",
			"assertion.trusted_jwks[0]: must use https (http is allowed only for loopback hosts)",
			"assertion.jwks_max_stale: must be greater than 0 and at most 168h0m0s, not 200h0m0s",
		}},
		{"session", head + browserIdP + `session:
  cookie_name: "bad name"
  cookie_domain: other.com
  lifetime: 1h
  idle_timeout: 2h
  secrets: [short, "0123456789abcdef0123456789abcdef"]
routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: public}
`, []string{
			`session.cookie_name: "bad name" is not a valid cookie name`,
			`session.cookie_domain: "other.com" does not contain the external_url host "ztp.example.com", so browsers would refuse the cookie`,
			"session.idle_timeout: must not exceed lifetime (1h0m0s)",
			"session.secrets[0]: must be at least 32 bytes (got 5); generate one with: openssl rand -base64 32",
		}},
		{"browser route needs secrets and client", head + `idps:
  - {name: corp, issuer: "https://idp.example.com"}
policies: [policies/base.cedar]
routes:
  - {name: app, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: browser}
`, []string{
			`idps[0].client_id: required: browser route "app" signs in with this idp`,
			`idps[0].client_secret: required (or client_secret_file): browser route "app" signs in with this idp`,
			`routes[0].host: browser route host "app.example.com" differs from the external_url host "ztp.example.com": set session.cookie_domain to a parent domain of both`,
			`session.secrets: required (or secrets_file): route "app" uses auth browser`,
		}},
		{"assertion", head + publicRoute + `assertion:
  signing_key_file: certs/server.crt
  ttl: 1s
  trusted_jwks: [http://jwks.example.com, missing.json, ""]
`, []string{
			"assertion.signing_key_file: " + td + `/certs/server.crt: PEM block is "CERTIFICATE"; want an EC P-256 private key`,
			"assertion.ttl: must be between 10s and 10m0s, not 1s",
			"assertion.trusted_jwks[0]: must use https (http is allowed only for loopback hosts)",
			"assertion.trusted_jwks[1]: " + td + "/missing.json: no such file",
			"assertion.trusted_jwks[2]: must not be empty",
		}},
		{"server", head + publicRoute + `server:
  read_header_timeout: 0s
  write_timeout: -1s
  max_header_bytes: 0
  max_body_bytes: -1
`, []string{
			"server.read_header_timeout: must be greater than 0: it bounds how long a slow client can hold a connection",
			"server.write_timeout: must not be negative",
			"server.max_header_bytes: must be greater than 0",
			"server.max_body_bytes: must not be negative (0 means unlimited)",
		}},
		{"audit and log", head + publicRoute + "audit: {output: no/such/dir/audit.log}\nlog: {level: loud, format: xml}\n", []string{
			"audit.output: " + td + "/no/such/dir: no such directory",
			`log.level: must be debug, info, warn or error, not "loud"`,
			`log.format: must be json or text, not "xml"`,
		}},
		{"route fields", head + `routes:
  - name: App
    host: https://app.example.com
    path_prefix: api
    upstream: 127.0.0.1:8080
    auth: magic
  - name: two
    host: "two.example.com:99999"
    path_prefix: /a/../b
    upstream: "http://127.0.0.1:8080/?q=1"
  - name: three
    host: "bücher.example.com"
    path_prefix: /a%2fb
    upstream: http://u:p@127.0.0.1
    upstream_ca_file: certs/upstream-ca.crt
    auth: public
    timeout: -1s
  - name: four
    host: "*.*.example.com"
    path_prefix: //x
    upstream: ftp://example.com
    upstream_server_name: "bad name"
    idp: ghost
    auth: public
`, []string{
			`routes[0].name: "App" must match [a-z0-9_-]+`,
			`routes[0].host: "https://app.example.com": must be a host name, not a URL`,
			`routes[0].path_prefix: "api": must start with "/"`,
			"routes[0].upstream: must be an absolute http(s) URL",
			`routes[0].auth: must be bearer, mtls, browser or public, not "magic"`,
			`routes[1].host: "two.example.com:99999": port must be a number from 1 to 65535`,
			`routes[1].path_prefix: "/a/../b": must not contain "." or ".." segments`,
			"routes[1].upstream: must not have a query",
			"routes[1].auth: required: bearer, mtls, browser or public",
			`routes[2].host: "bücher.example.com": non-ASCII host name: use its xn-- (punycode) form`,
			`routes[2].path_prefix: "/a%2fb": must not contain "%": write the decoded path`,
			"routes[2].upstream: must not contain credentials",
			"routes[2].timeout: must not be negative (0 means no timeout)",
			`routes[3].host: "*.*.example.com": malformed host name: only letters, digits, - and _ are allowed`,
			`routes[3].path_prefix: "//x": must not contain "//"`,
			"routes[3].upstream: must be an absolute http(s) URL",
			`routes[3].upstream_server_name: "bad name": malformed host name: only letters, digits, - and _ are allowed`,
			`routes[3].idp: no idp named "ghost"`,
		}},
		{"upstream TLS options need https", head + `routes:
  - {name: app, host: a.example.com, upstream: "http://127.0.0.1", auth: public, upstream_ca_file: certs/upstream-ca.crt, upstream_server_name: x.internal}
`, []string{
			"routes[0].upstream_ca_file: only used with an https upstream",
			"routes[0].upstream_server_name: only used with an https upstream",
		}},
		{"duplicates after canonicalisation", head + `routes:
  - {name: app, host: App.Example.com., path_prefix: /api/, upstream: "http://127.0.0.1", auth: public}
  - {name: app, host: app.example.com:80, path_prefix: /api, upstream: "http://127.0.0.1", auth: public}
  - {name: other, host: app.example.com, path_prefix: /apix, upstream: "http://127.0.0.1", auth: public}
`, []string{
			`routes[1].name: duplicate name "app" (also routes[0])`,
			`routes[1].path_prefix: "/api" on host "app.example.com" is already routed by routes[0]`,
		}},
		{"auth needs", head + `policies: [policies/base.cedar]
idps: [{name: corp, issuer: "https://idp.example.com"}]
routes:
  - {name: api, host: a.example.com, upstream: "http://127.0.0.1", auth: bearer}
  - {name: api2, host: b.example.com, upstream: "http://127.0.0.1", auth: bearer, idp: corp}
  - {name: svc, host: c.example.com, upstream: "http://127.0.0.1", auth: mtls}
`, []string{
			"idps[0].audiences: required: bearer route \"api2\" accepts this idp's tokens",
			"routes[0].auth: bearer needs an idp with audiences, and none has them",
			"routes[2].auth: mtls needs tls.client_auth request or require",
		}},
		// Issue 21.1: userinfo enrichment settings.
		{"userinfo problems", head + publicRoute + `idps:
  - {name: corp, issuer: "https://idp.example.com", jwks_url: "https://idp.example.com/keys", audiences: [a], userinfo: {cache_ttl: 0s, cache_size: 0, timeout: 11s, on_failure: ignore}}
  - {name: browser, issuer: "https://login.example.com", client_id: c, client_secret: s, userinfo: {url: "http://login.example.com/userinfo"}}
  - {name: fine, issuer: "https://fine.example.com", audiences: [a], userinfo: {}}
`, []string{
			"idps[0].userinfo.cache_ttl: must be between 1s and 24h0m0s, not 0s",
			"idps[0].userinfo.cache_size: must be at least 1, not 0",
			"idps[0].userinfo.timeout: must be greater than 0 and at most 10s, not 11s",
			`idps[0].userinfo.on_failure: must be deny or proceed, not "ignore"`,
			// A missing key sorts at the end of its block.
			"idps[0].userinfo.url: required with jwks_url (no discovery document names the userinfo endpoint)",
			"idps[1].userinfo: enriches bearer tokens: set audiences too",
			"idps[1].userinfo.url: must use https (http is allowed only for loopback hosts)",
		}},
		{"browser route without idps", head + `policies: [policies/base.cedar]
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
routes:
  - {name: app, host: a.example.com, upstream: "http://127.0.0.1", auth: browser}
`, []string{
			`routes[0].host: browser route host "a.example.com" differs from the external_url host "ztp.example.com": set session.cookie_domain to a parent domain of both`,
			"routes[0].idp: browser sign-in needs an idp, and none is configured",
		}},
		{"sidecar without block", "mode: sidecar\n" + head + "policies: [policies/base.cedar]\nassertion: {trusted_jwks: [certs/server.crt]}\n", []string{
			"sidecar.upstream: required when mode is sidecar",
		}},
		{"sidecar block problems", "mode: sidecar\n" + head + publicRoute + `policies: [policies/base.cedar]
sidecar: {name: app, upstream: "unix:/run/app.sock"}
`, []string{
			"sidecar.upstream: must be an absolute http(s) URL",
			`sidecar.name: duplicate name "app" (also routes[0])`,
			"assertion.trusted_jwks: required in sidecar mode unless an idp has audiences: nothing could authenticate a request",
		}},
		{"sidecar block in proxy mode", head + publicRoute + "sidecar: {upstream: \"http://127.0.0.1:8080\"}\n", []string{
			"sidecar: only used when mode is sidecar",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), "testdata", Options{LookupEnv: noEnv})
			got := problemsOf(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if (err == nil) != (f != nil) {
				t.Errorf("Parse returned file %v with error %v", f != nil, err)
			}
		})
	}
}

// TestCognitoLogoutURLWarning (issue 21.3): a Cognito sign-in IdP without
// logout_url is warned about, since Cognito's end_session_endpoint wants
// logout_uri and would not send users back.
func TestCognitoLogoutURLWarning(t *testing.T) {
	idp := `idps:
  - {name: cognito, issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", client_id: c, client_secret: s%s}
`
	for _, tt := range []struct{ extra, want string }{
		{"", "idps[0].logout_url: not set: Amazon Cognito's end_session_endpoint ignores post_logout_redirect_uri"},
		{", logout_url: \"https://auth.example.com/logout?client_id=c&logout_uri=https://ztp.example.com/.ztp/signed-out\"", ""},
	} {
		f, err := Parse([]byte(head+publicRoute+fmt.Sprintf(idp, tt.extra)), "testdata", Options{LookupEnv: noEnv})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range f.Warnings {
			got = append(got, w.Path+": "+w.Message)
		}
		if joined := strings.Join(got, "\n"); (tt.want == "") != (joined == "") || !strings.Contains(joined, tt.want) {
			t.Errorf("logout_url %q: warnings %q, want %q", tt.extra, got, tt.want)
		}
	}
}

// TestAllProblemsAtOnce checks that problems from every stage (env,
// decoding, validation) come back together, in file order, with lines.
func TestAllProblemsAtOnce(t *testing.T) {
	src := `listen: ":8443"
admin_listen: "127.0.0.1:9090"
external_url: https://ztp.example.com
insecure_plaintext: true
timezone: "${ZONE}"
log: {level: loud}
routes:
  - name: app
    host: app.example.com
    upsteam: http://127.0.0.1:8080
    auth: public
    timeout: 30
`
	_, err := Parse([]byte(src), "testdata", Options{LookupEnv: noEnv})
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want *Errors", err)
	}
	want := []Problem{
		{Path: "timezone", Line: 5, Message: "${ZONE} is not set"},
		{Path: "log.level", Line: 6, Message: `must be debug, info, warn or error, not "loud"`},
		{Path: "routes[0].upsteam", Line: 10, Message: "unknown key"},
		{Path: "routes[0].timeout", Line: 12, Message: `invalid duration "30": use a number with a unit, such as "30s" or "1h30m"`},
		// The missing upstream shows its route's line and sorts at the end
		// of the route.
		{Path: "routes[0].upstream", Line: 8, Message: "required: an absolute http(s) URL"},
	}
	if diff := cmp.Diff(want, errs.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestPolicyHookProblems(t *testing.T) {
	src := head + publicRoute + "timezone: Asia/Tokyo\npolicies: [policies/*.cedar]\n"
	opts := Options{
		LookupEnv: noEnv,
		CheckPolicies: func(paths []string, loc *time.Location) error {
			if loc.String() != "Asia/Tokyo" {
				t.Errorf("loc = %v", loc)
			}
			return errors.Join(
				errors.New(paths[0]+":3:10: unexpected token"),
				errors.New(paths[1]+":1:1: unknown annotation"),
			)
		},
	}
	_, err := Parse([]byte(src), "testdata", opts)
	td := testdataDir(t)
	want := []string{
		"policies: " + td + "/policies/admin.cedar:3:10: unexpected token",
		"policies: " + td + "/policies/base.cedar:1:1: unknown annotation",
	}
	if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestWebAuthnRPID(t *testing.T) {
	for _, tc := range []struct {
		ext, rpID string
		enabled   bool
		want      string
	}{
		{"https://ZTP.example.com:8443", "", true, "ztp.example.com"},
		{"https://ztp.example.com", "Example.com", true, "example.com"},
		{"https://127.0.0.1:8443", "", true, ""}, // browsers refuse IPs: off
		{"https://ztp.example.com", "", false, ""},
	} {
		f := &File{ExternalURL: tc.ext, WebAuthn: WebAuthn{Enabled: tc.enabled, RPID: tc.rpID}}
		if got := f.WebAuthnRPID(); got != tc.want {
			t.Errorf("%s %q enabled=%v: %q, want %q", tc.ext, tc.rpID, tc.enabled, got, tc.want)
		}
	}
}
