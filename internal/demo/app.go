// Package demo holds the pieces `ztproxy demo` runs beside the proxy: a
// small upstream app that shows what the proxy told it, and a development
// token issuer. Both listen on loopback only and are NOT for production.
package demo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

// AppHandler is the demo upstream: it echoes the identity the proxy
// forwarded (headers and the decoded assertion payload), as HTML for
// browsers and JSON otherwise.
func AppHandler() http.Handler {
	return appHandler{now: time.Now}
}

type appHandler struct{ now func() time.Time }

func (h appHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seen := map[string]string{}
	for name, vals := range r.Header {
		if strings.HasPrefix(name, "X-Ztp-") || name == "X-Forwarded-For" || name == "X-Request-Id" {
			seen[name] = strings.Join(vals, ", ")
		}
	}
	payload := assertionPayload(r.Header.Get("X-Ztp-Assertion"))
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"app": "ztproxy demo app", "path": r.URL.Path, "method": r.Method, "headers": seen, "assertion": payload})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Cache-Control", "no-store")
	appPage.Execute(w, appPageData(r, seen, payload, h.now()))
}

// pageHeader is one forwarded header as the page shows it.
type pageHeader struct {
	Name, Value, Means string
}

// pageClaim is one assertion claim with a readable value.
type pageClaim struct {
	Name, Value, Means string
}

// headerMeaning explains the headers the proxy sets.
var headerMeaning = map[string]string{
	"X-Ztp-User":      "who you are: the user id, <issuer>#<subject>",
	"X-Ztp-Email":     "your email address, as your identity provider verified it",
	"X-Ztp-Groups":    "your groups at the identity provider (policies use them)",
	"X-Ztp-Device":    "the device identity from your client certificate",
	"X-Ztp-Assertion": "all of the above, signed by ztproxy (an ES256 JWT for this route); claims below",
	"X-Forwarded-For": "the client address ztproxy saw",
	"X-Request-Id":    "the request id in ztproxy's audit log",
}

// claimMeaning explains the assertion's claims.
var claimMeaning = map[string]string{
	"iss": "issuer: this ztproxy", "aud": "audience: the route this assertion is for", "sub": "subject: the user id",
	"iat": "issued", "nbf": "valid from", "exp": "expires (assertions are short-lived)", "auth_time": "you signed in",
	"amr": "how you authenticated", "acr": "authentication level", "auth": "kind of authentication",
	"kind": "user or service", "idp": "identity provider", "jti": "unique id of this assertion",
	"device": "device id", "device_fp": "device certificate fingerprint (SHA-256)",
	"email": "email address", "email_verified": "the identity provider verified the address", "groups": "groups",
}

type appPageView struct {
	Path, Who string
	Public    bool
	Headers   []pageHeader
	Claims    []pageClaim
}

func appPageData(r *http.Request, seen map[string]string, claims map[string]any, now time.Time) appPageView {
	v := appPageView{Path: r.URL.Path, Who: seen["X-Ztp-Email"]}
	if v.Who == "" {
		v.Who = seen["X-Ztp-User"]
	}
	v.Public = v.Who == "" && seen["X-Ztp-Device"] == ""
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		val := seen[n]
		if n == "X-Ztp-Assertion" && len(val) > 48 {
			val = fmt.Sprintf("%s… (%d bytes)", val[:40], len(val))
		}
		v.Headers = append(v.Headers, pageHeader{Name: n, Value: val, Means: headerMeaning[n]})
	}
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Claims = append(v.Claims, pageClaim{Name: k, Value: claimValue(k, claims[k], now), Means: claimMeaning[k]})
	}
	return v
}

// claimValue renders a claim for people: times as dates with how long
// ago or from now, lists joined, everything else as JSON.
func claimValue(name string, v any, now time.Time) string {
	switch name {
	case "iat", "nbf", "exp", "auth_time":
		if f, ok := v.(float64); ok {
			t := time.Unix(int64(f), 0).UTC()
			return t.Format("2006-01-02 15:04:05 UTC") + " (" + relative(t, now) + ")"
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ", ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// relative says how far t is from now in words.
func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d == 0:
		return "now"
	case d > 0:
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// assertionPayload decodes (without verifying: the app trusts the proxy
// here only for display) the claims of an assertion JWT.
func assertionPayload(raw string) map[string]any {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(data, &claims) != nil {
		return nil
	}
	return claims
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Demo app · ztproxy</title><style>
:root{color-scheme:light dark}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:60rem;margin:5vh auto;background:#fff;border-radius:14px;padding:2rem 2.5rem;box-shadow:0 2px 14px #0000001a}
header{font-size:.8rem;letter-spacing:.08em;text-transform:uppercase;color:#5a6275;margin-bottom:1rem}
h1{font-size:1.45rem;margin:0 0 .6rem}h2{font-size:1.05rem;margin:1.8rem 0 .4rem}p{line-height:1.5}
nav a{margin-right:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e7e9ee;vertical-align:top}
td.name{white-space:nowrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.82rem}
td.value{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.82rem;overflow-wrap:anywhere}
td.means{color:#5a6275;font-size:.82rem}
.muted{color:#6b7385;font-size:.85rem}
@media (prefers-color-scheme:dark){body{background:#15171c;color:#e6e8ee}main{background:#1e2128;box-shadow:none}td,th{border-color:#2e323b}.muted,header,td.means{color:#9aa1b2}a{color:#8ab4ff}}
</style></head>
<body><main><header>ztproxy demo · the upstream app</header>
<h1>Demo app</h1>
{{if .Public}}<p>You reached <code>{{.Path}}</code> through ztproxy without signing in: this is a public route, and
policy still decided that you may see it.</p>
{{else}}<p>You reached <code>{{.Path}}</code> through ztproxy{{if .Who}} as <b>{{.Who}}</b>{{end}}. Before forwarding
your request, ztproxy checked who you are and your device, scored its risk and asked the Cedar policies; then it
removed any <code>X-Ztp-*</code> header your browser sent and added its own. This app never sees your session
cookie.</p>{{end}}
<nav><a href="/.ztp/whoami">Who am I</a> <a href="/admin">Admin area</a> <a href="/.ztp/logout">Sign out</a></nav>
<h2>Headers ztproxy sent this app</h2>
{{if .Headers}}<table><tr><th>Header</th><th>Value</th><th>Meaning</th></tr>
{{range .Headers}}<tr><td class="name">{{.Name}}</td><td class="value">{{.Value}}</td><td class="means">{{.Means}}</td></tr>{{end}}
</table>{{else}}<p class="muted">None.</p>{{end}}
{{if .Claims}}<h2>The signed assertion</h2>
<p class="muted">An application verifies <code>X-Ztp-Assertion</code> with the keys at <code>/.ztp/jwks.json</code>
instead of trusting the plain headers. Its claims:</p>
<table><tr><th>Claim</th><th>Value</th><th>Meaning</th></tr>
{{range .Claims}}<tr><td class="name">{{.Name}}</td><td class="value">{{.Value}}</td><td class="means">{{.Means}}</td></tr>{{end}}
</table>{{end}}
<h2>Risk</h2>
<p class="muted">ztproxy scored this request's risk (new network, new browser, unusual hour, operator flags, …)
before policy decided. The score stays with ztproxy and is not sent to applications: see yours, and each route's
decision, on <a href="/.ztp/whoami">Who am I</a>.</p>
</main></body></html>`))
