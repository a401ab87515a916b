package portal

import (
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strconv"

	"ztproxy/awscreds"
	"ztproxy/decide"
)

// AWSCLIPath hands credentials to `ztproxy aws credential-process` waiting
// on a loopback port: /.ztp/aws/cli?role=NAME&port=P&state=S.
const AWSCLIPath = "/.ztp/aws/cli"

var cliStatePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// handleAWSCLI mints the signed-in user's credentials (policy on
// Route::"aws:<role>" as for /.ztp/aws/credentials) and hands them to the
// CLI (handBack).
func (pt *Portal) handleAWSCLI(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	q := r.URL.Query()
	port, err := strconv.Atoi(q.Get("port"))
	if err != nil || port < 1024 || port > 65535 || !cliStatePattern.MatchString(q.Get("state")) {
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_cli_request", Msg: "this link is not from ztproxy aws credential-process"}
	}
	creds, err := pt.authorizedAWS(w, r, x, AWSCLIPath)
	if err != nil {
		return err
	}
	return handBack(w, x, strconv.Itoa(port), q.Get("state"), map[string]string{"credentials": string(awscreds.CredentialProcessJSON(creds))})
}

// handBack answers with a page that posts fields and the CLI's state to
// http://127.0.0.1:<port>/, where a ztproxy command waits, by a
// self-submitting form: never in a URL, where history and logs would keep
// them. Only that loopback address may receive the form (CSP
// form-action).
func handBack(w http.ResponseWriter, x *decide.Exchange, port, state string, fields map[string]string) error {
	n := newCSPNonce()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+n+"'; form-action http://127.0.0.1:"+port+"; frame-ancestors 'none'")
	type field struct{ Name, Value string }
	list := make([]field, 0, len(fields))
	for name, value := range fields {
		list = append(list, field{name, value})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	x.Status = http.StatusOK
	return cliPage.Execute(w, map[string]any{"Action": "http://127.0.0.1:" + port + "/", "State": state, "Fields": list, "Nonce": n})
}

var cliPage = template.Must(template.New("cli").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Back to your terminal · ztproxy</title><style>body{font-family:system-ui,sans-serif;margin:10vh auto;max-width:32rem;color:#1d2330}</style></head>
<body><h1>Handing over to your terminal…</h1><p>You can close this tab once your terminal continues.</p>
<form id="f" method="post" action="{{.Action}}"><input type="hidden" name="state" value="{{.State}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button type="submit">Continue</button></noscript></form>
<script nonce="{{.Nonce}}">document.getElementById("f").submit();</script></body></html>`))
