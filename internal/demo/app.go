// Package demo holds the pieces `ztproxy demo` runs beside the proxy: a
// small upstream app that shows what the proxy told it, and a development
// token issuer. Both listen on loopback only and are NOT for production.
package demo

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// AppHandler is the demo upstream: it echoes the identity the proxy
// forwarded (headers and the decoded assertion payload), as HTML for
// browsers and JSON otherwise.
func AppHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		appPage.Execute(w, map[string]any{"Path": r.URL.Path, "Names": names, "Seen": seen, "Assertion": payload})
	})
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
<title>Demo app · ztproxy</title><style>body{font-family:system-ui,sans-serif;margin:3rem;color:#1d2330}
table{border-collapse:collapse}td{border-bottom:1px solid #e4e6eb;padding:.3rem .8rem;font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}</style></head>
<body><h1>Demo app</h1><p>You reached <code>{{.Path}}</code> through ztproxy. This is what the proxy told the app:</p>
<table>{{range .Names}}<tr><td>{{.}}</td><td>{{index $.Seen .}}</td></tr>{{end}}</table>
{{if .Assertion}}<h2>Assertion claims</h2><table>{{range $k, $v := .Assertion}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{end}}
</body></html>`))
