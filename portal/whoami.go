package portal

import (
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// Whoami is what /.ztp/whoami shows a user about themselves (its JSON
// form is an API).
type Whoami struct {
	Principal struct {
		ID       string   `json:"id"`
		Kind     string   `json:"kind"`
		Email    string   `json:"email,omitempty"`
		Name     string   `json:"name,omitempty"`
		Username string   `json:"username,omitempty"`
		Groups   []string `json:"groups"`
		Scopes   []string `json:"scopes,omitempty"`
		IdP      string   `json:"idp,omitempty"`
		Auth     string   `json:"auth"`
		AMR      []string `json:"amr,omitempty"`
		ACR      string   `json:"acr,omitempty"`
		AuthTime string   `json:"auth_time,omitempty"`
		Expires  string   `json:"session_expires,omitempty"`
	} `json:"principal"`
	Device *identity.Device `json:"device,omitempty"`
	// DeviceTrust explains what the device inventory says about the
	// device and why it counts (or not) as trusted.
	DeviceTrust []string      `json:"device_trust,omitempty"`
	ClientIP    string        `json:"client_ip"`
	Risk        identity.Risk `json:"risk"`
	Routes      []WhoamiRoute `json:"routes"`
	Hidden      int           `json:"hidden_routes"`
	// Keys are the user's security keys; nil when WebAuthn is off or the
	// caller is not a browser session.
	Keys []WhoamiKey `json:"security_keys,omitempty"`
	// KeysEnabled shows the security key section.
	KeysEnabled bool `json:"-"`
}

// WhoamiKey is one of the user's security keys.
type WhoamiKey struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Created  string `json:"created"`
	LastUsed string `json:"last_used,omitempty"`
}

// WhoamiRoute is what policy decides for the user on one route.
type WhoamiRoute struct {
	Name string `json:"name"`
	// URL opens the route: the route's host with the external URL's
	// scheme and port (one listener serves every route). Empty for a
	// wildcard host, which has no single address.
	URL      string   `json:"url,omitempty"`
	Decision string   `json:"decision"`
	Policies []string `json:"policies,omitempty"`
	StepUp   []string `json:"step_up,omitempty"`
}

// handleWhoami shows the caller's identity, device, network, risk and
// the decision on each route they may use. It authenticates with a bearer
// token when one is sent, else with the browser session.
func (pt *Portal) handleWhoami(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return decide.ErrMethod
	}
	eng := x.Engine
	if err := pt.authenticateEndpoint(w, r, x, eng.Issuer()+"/.ztp/whoami"); err != nil {
		return err
	}
	eng.AssessRisk(r.Context(), x)
	info := pt.whoamiFor(eng, x)
	if err := pt.whoamiKeys(r, x, &info); err != nil {
		return err
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(info)
	}
	renderPage(w, http.StatusOK, pageData{Title: "Who am I", Body: whoamiHTML(info), Link: eng.Issuer() + authn.LogoutPath, LinkText: "Sign out"})
	return nil
}

func (pt *Portal) whoamiFor(eng *decide.Engine, x *decide.Exchange) Whoami {
	var info Whoami
	p := &x.RC.Principal
	info.Principal.ID, info.Principal.Kind, info.Principal.Email, info.Principal.Name = p.ID, string(p.Kind), p.Email, p.Name
	info.Principal.Groups, info.Principal.IdP, info.Principal.Auth = p.Groups, p.IdP, string(p.AuthKind)
	info.Principal.AMR, info.Principal.ACR = p.AMR, p.ACR
	info.Principal.Username, info.Principal.Scopes = p.Username, p.Scopes
	if info.Principal.Groups == nil {
		info.Principal.Groups = []string{}
	}
	if !p.AuthTime.IsZero() {
		info.Principal.AuthTime = p.AuthTime.UTC().Format("2006-01-02 15:04:05Z")
	}
	if !p.Expiry.IsZero() {
		info.Principal.Expires = p.Expiry.UTC().Format("2006-01-02 15:04:05Z")
	}
	if x.RC.Device.Present {
		d := x.RC.Device
		info.Device = &d
		info.DeviceTrust = deviceTrust(&d, p, devicesOf(eng) != nil)
	}
	info.ClientIP, info.Risk = x.ClientIP(), x.RC.Risk
	for _, rt := range eng.Routes() {
		d, err := eng.Preview(x, rt)
		if err != nil || d.Effect == identity.Deny {
			info.Hidden++
			continue
		}
		info.Routes = append(info.Routes, WhoamiRoute{
			Name: rt.Name, URL: routeURL(eng.Config().ExternalURL, rt.Host, rt.PathPrefix),
			Decision: d.Effect.String(), Policies: d.PolicyIDs, StepUp: d.StepUp,
		})
	}
	return info
}

// routeURL is where a route can be opened: its host, with the scheme and
// port of the external URL when the host names no port of its own. Issue
// 15.1: the port was dropped, so links led to a closed port.
func routeURL(ext *url.URL, host, pathPrefix string) string {
	if strings.HasPrefix(host, "*.") {
		return ""
	}
	if port := ext.Port(); port != "" && !hostHasPort(host) {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	return ext.Scheme + "://" + host + pathPrefix
}

// hostHasPort reports whether a canonical route host ("name", "name:port",
// "[v6]" or "[v6]:port") names a port.
func hostHasPort(host string) bool {
	if strings.HasPrefix(host, "[") {
		return strings.Contains(host, "]:")
	}
	return strings.Contains(host, ":")
}

var whoamiTemplate = template.Must(template.New("whoami").Parse(`
<h2>Identity</h2><table class="kv">
<tr><th>User</th><td><code>{{.Principal.ID}}</code></td></tr>
{{if .Principal.Email}}<tr><th>Email</th><td>{{.Principal.Email}}</td></tr>{{end}}
{{if .Principal.Name}}<tr><th>Name</th><td>{{.Principal.Name}}</td></tr>{{end}}
{{if .Principal.Username}}<tr><th>Username</th><td>{{.Principal.Username}}</td></tr>{{end}}
<tr><th>Groups</th><td>{{range $i, $g := .Principal.Groups}}{{if $i}}, {{end}}{{$g}}{{else}}<span class="muted">none</span>{{end}}</td></tr>
{{if .Principal.Scopes}}<tr><th>Scopes</th><td>{{range $i, $s := .Principal.Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}</td></tr>{{end}}
<tr><th>Signed in</th><td>{{.Principal.Auth}}{{if .Principal.IdP}} via {{.Principal.IdP}}{{end}}{{if .Principal.AuthTime}} at {{.Principal.AuthTime}}{{end}}{{if .Principal.AMR}} ({{range $i, $m := .Principal.AMR}}{{if $i}}, {{end}}{{$m}}{{end}}){{end}}</td></tr>
{{if .Principal.Expires}}<tr><th>Session ends</th><td>{{.Principal.Expires}}</td></tr>{{end}}
</table>
<h2>Device and network</h2><table class="kv">
<tr><th>Device</th><td>{{if .Device}}<code>{{.Device.ID}}</code><br><span class="muted">SHA-256 {{.Device.Fingerprint}}</span>{{range .DeviceTrust}}<br>{{.}}{{end}}{{else}}<span class="muted">no client certificate</span>{{end}}</td></tr>
<tr><th>Client IP</th><td><code>{{.ClientIP}}</code></td></tr>
<tr><th>Risk</th><td>{{.Risk.Score}} ({{.Risk.Level}}){{range .Risk.Reasons}}<br><span class="muted">{{.Code}} +{{.Points}}</span>{{end}}</td></tr>
</table>
<h2>Your applications</h2>
{{if .Routes}}<table><tr><th>Route</th><th>Decision</th><th>Policies</th></tr>
{{range .Routes}}<tr><td>{{if .URL}}<a href="{{.URL}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td class="{{.Decision}}">{{.Decision}}{{range .StepUp}} ({{.}}){{end}}</td><td><code>{{range $i, $p := .Policies}}{{if $i}}, {{end}}{{$p}}{{end}}</code></td></tr>{{end}}
</table>{{else}}<p class="muted">No application allows you right now.</p>{{end}}
{{if .KeysEnabled}}<h2>Security keys</h2>
{{if .Keys}}<table><tr><th>Name</th><th>Added</th><th>Last used</th><th></th></tr>
{{range .Keys}}<tr><td>{{.Name}}</td><td>{{.Created}}</td><td>{{if .LastUsed}}{{.LastUsed}}{{else}}<span class="muted">never</span>{{end}}</td>
<td><form method="post" action="/.ztp/stepup/keys/remove"><input type="hidden" name="id" value="{{.ID}}"><button class="link" type="submit">Remove</button></form></td></tr>{{end}}
</table>{{else}}<p class="muted">No security key yet. Applications that need one will ask you to add it.</p>{{end}}
<p><a href="/.ztp/stepup/enroll?rd=%2F.ztp%2Fwhoami">Add a security key or passkey</a></p>{{end}}
`))

func whoamiHTML(info Whoami) template.HTML { return executeHTML(whoamiTemplate, info) }

// authenticateEndpoint authenticates the caller of a /.ztp/ endpoint
// (decide.Engine.AuthenticateEndpoint) and refreshes its session cookies.
func (pt *Portal) authenticateEndpoint(w http.ResponseWriter, r *http.Request, x *decide.Exchange, returnTo string) error {
	v := x.Engine.AuthenticateEndpoint(r, x, returnTo)
	for _, c := range v.SetCookies {
		http.SetCookie(w, c)
	}
	return v.Err
}
