package portal

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
)

// pageData fills the shared page layout.
type pageData struct {
	Status    int
	Title     string
	Message   string
	Code      string
	RequestID string
	Reasons   []string
	Link      string
	LinkText  string
	// Links are more buttons after Link, in a quieter style.
	Links []pageLink
	Body  template.HTML
	// Nonce, when set, allows the page's own scripts carrying it and
	// same-origin fetches (the WebAuthn pages).
	Nonce string
}

// pageLink is a button on a page.
type pageLink struct{ URL, Text string }

// pageCSP allows nothing but the page's own inline style: no scripts, no
// third-party resources, no framing.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// newCSPNonce returns a fresh script nonce for one response, base64url so
// that html/template has nothing to escape in the nonce attribute.
func newCSPNonce() string {
	var n [16]byte
	rand.Read(n[:])
	return base64.RawURLEncoding.EncodeToString(n[:])
}

// renderPage writes a product page with the shared layout.
func renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	csp := pageCSP
	if d.Nonce != "" {
		csp += "; script-src 'nonce-" + d.Nonce + "'; connect-src 'self'"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · ztproxy</title>
<style>
:root{color-scheme:light dark}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:44rem;margin:8vh auto;background:#fff;border-radius:14px;padding:2rem 2.5rem;box-shadow:0 2px 14px #0000001a}
header{font-size:.8rem;letter-spacing:.08em;text-transform:uppercase;color:#5a6275;margin-bottom:1rem}
h1{font-size:1.45rem;margin:0 0 .6rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}
p{line-height:1.5}.muted{color:#6b7385;font-size:.85rem}
ul{padding-left:1.2rem;line-height:1.6}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e7e9ee;vertical-align:top}
table.kv th{width:9rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.allow{color:#0b7a3e;font-weight:600}.deny{color:#b3261e;font-weight:600}.step_up{color:#a05a00;font-weight:600}
button{font:inherit;background:#2b59c3;color:#fff;border:0;padding:.55rem 1rem;border-radius:8px;cursor:pointer}button:disabled{opacity:.55}
button.link{background:none;color:#b3261e;padding:0;text-decoration:underline}
input{font:inherit;padding:.4rem .5rem;border:1px solid #c9ced8;border-radius:6px;margin:0 .5rem .8rem 0}
a.button{display:inline-block;margin:1rem .5rem 0 0;background:#2b59c3;color:#fff;text-decoration:none;padding:.55rem 1rem;border-radius:8px}
a.button.quiet{background:#e7e9ee;color:#1d2330}
@media (prefers-color-scheme:dark){body{background:#15171c;color:#e6e8ee}main{background:#1e2128;box-shadow:none}td,th{border-color:#2e323b}.muted,header{color:#9aa1b2}a{color:#8ab4ff}a.button{color:#fff}a.button.quiet{background:#2e323b;color:#e6e8ee}}
</style></head>
<body><main><header>ztproxy · secure access</header>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Reasons}}<ul>{{range .Reasons}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{.Body}}
{{if .Link}}<a class="button" href="{{.Link}}">{{.LinkText}}</a>{{end}}{{range .Links}}<a class="button quiet" href="{{.URL}}">{{.Text}}</a>{{end}}
{{if .RequestID}}<p class="muted">{{if .Code}}{{if and .Status (lt .Status 400)}}Code{{else}}Error{{end}} <b>{{.Code}}</b> · {{end}}request id <code>{{.RequestID}}</code></p>{{end}}
</main></body></html>
`))
