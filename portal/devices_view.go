package portal

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"ztproxy/decide"
	"ztproxy/devices"
	"ztproxy/identity"
)

// DeviceView is one of the user's devices as /.ztp/devices shows it (its
// JSON form is an API).
type DeviceView struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Status     string             `json:"status"`
	Managed    bool               `json:"managed"`
	EnrolledAt time.Time          `json:"enrolled_at"`
	LastSeen   time.Time          `json:"last_seen"`
	NotAfter   time.Time          `json:"certificate_not_after"`
	Facts      []devices.FactView `json:"facts"`
	This       bool               `json:"this_device"`
}

// devicesPage lists the caller's devices with their posture and what the
// inventory says about the certificate of this request.
func (pt *Portal) devicesPage(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return decide.ErrMethod
	}
	if err := pt.authenticateEndpoint(w, r, x, x.Engine.Issuer()+DevicesPath); err != nil {
		return err
	}
	p := &x.RC.Principal
	recs, err := ds.List(r.Context(), p.ID)
	if err != nil {
		return deviceError(err)
	}
	thisID, _ := ds.DeviceID(x.RC.Device.SPIFFEID)
	views := make([]DeviceView, 0, len(recs))
	for i := range recs {
		rec := &recs[i]
		views = append(views, DeviceView{
			ID: rec.ID, Name: rec.Name, Status: rec.Status, Managed: rec.Managed, EnrolledAt: rec.EnrolledAt,
			LastSeen: rec.LastSeen, NotAfter: rec.NotAfter, Facts: ds.Posture(rec), This: rec.ID == thisID && x.RC.Device.Enrolled,
		})
	}
	trust := deviceTrust(&x.RC.Device, p, true)
	x.Status = http.StatusOK
	if wantsJSON(r) {
		w.Header().Set("Cache-Control", "no-store")
		return writeJSON(w, x, map[string]any{"devices": views, "this_device": trust})
	}
	canRemove := p.AuthKind == identity.AuthBrowser
	renderPage(w, http.StatusOK, pageData{Title: "Your devices", Body: devicesHTML(views, trust, canRemove)})
	return nil
}

// deviceTrust explains, in sentences for the user, what the device
// inventory says about the request's client certificate and why it counts
// (or not) as a trusted device. inventory says whether one is configured.
func deviceTrust(d *identity.Device, p *identity.Principal, inventory bool) []string {
	switch {
	case !d.Present:
		return []string{"No client certificate: this browser or client presented no device certificate."}
	case !inventory:
		return []string{"A client certificate was presented; no device inventory is configured, so it is not an enrolled device."}
	case !d.Checked:
		return []string{"The device inventory could not be asked right now, so this device counts as not enrolled."}
	case !d.Enrolled:
		return []string{"Not enrolled: this certificate is not the current certificate of a device enrolled with ztproxy."}
	case d.Refused():
		return []string{"This device is " + d.Status + ": it is refused everywhere."}
	}
	out := []string{}
	if d.OwnerMatches(p) {
		out = append(out, "Enrolled to you.")
	} else {
		out = append(out, "Enrolled to another user ("+d.Owner+"): policies that require your own device refuse it.")
	}
	if d.Managed {
		out = append(out, "Managed (by an MDM or an operator).")
	} else {
		out = append(out, "Not managed.")
	}
	switch {
	case d.PostureStale:
		out = append(out, "Posture is stale: the last facts are older than the inventory's posture max age and count as unknown.")
	case d.PostureTime.IsZero():
		out = append(out, "No posture known yet: run `ztproxy device report`.")
	default:
		out = append(out, "Posture: "+postureSummary(&d.Posture)+".")
	}
	return out
}

// postureSummary lists the known facts and names the unknown ones.
func postureSummary(p *identity.Posture) string {
	var parts []string
	add := func(name, text string) {
		if p.IsKnown(name) {
			parts = append(parts, text)
		}
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	add(identity.FactOS, "os "+p.OS+" "+p.OSVersion)
	add(identity.FactDiskEncrypted, "disk encrypted: "+yesNo(p.DiskEncrypted))
	add(identity.FactFirewall, "firewall: "+yesNo(p.Firewall))
	add(identity.FactScreenLock, "screen lock: "+yesNo(p.ScreenLock))
	add(identity.FactScore, fmt.Sprintf("vendor score %d", p.Score))
	if unknown := p.Unknown(); len(unknown) > 0 {
		parts = append(parts, "unknown: "+strings.Join(unknown, ", "))
	}
	return strings.Join(parts, "; ")
}

var devicesTemplate = template.Must(template.New("devices").Parse(`
<h2>This request</h2><ul>{{range .Trust}}<li>{{.}}</li>{{end}}</ul>
<h2>Enrolled devices</h2>
{{if .Devices}}{{range .Devices}}
<h3>{{.Name}}{{if .This}} <span class="muted">(this device)</span>{{end}}</h3>
<table>
<tr><th>Id</th><td><code>{{.ID}}</code></td></tr>
<tr><th>Status</th><td class="{{if eq .Status "active"}}allow{{else}}deny{{end}}">{{.Status}}</td></tr>
<tr><th>Managed</th><td>{{if .Managed}}yes{{else}}no{{end}}</td></tr>
<tr><th>Enrolled</th><td>{{.EnrolledAt.UTC.Format "2006-01-02 15:04Z"}}; last seen {{.LastSeen.UTC.Format "2006-01-02 15:04Z"}}</td></tr>
<tr><th>Certificate</th><td>valid until {{.NotAfter.UTC.Format "2006-01-02 15:04Z"}}</td></tr>
<tr><th>Posture</th><td>{{range .Facts}}<code>{{.Name}}</code> = {{if .Unknown}}<span class="muted">unknown</span>{{else}}{{.Value}}{{end}}
 <span class="muted">({{.Source}}, {{.At.UTC.Format "2006-01-02 15:04Z"}}{{if .Stale}}, too old{{end}}{{if .Used}}, in use{{end}})</span><br>{{else}}<span class="muted">nothing reported yet</span>{{end}}</td></tr>
</table>
{{if and $.CanRemove (eq .Status "active")}}<form method="post" action="/.ztp/devices/remove"><input type="hidden" name="id" value="{{.ID}}"><button class="link" type="submit">Remove this device</button></form>{{end}}
{{end}}{{else}}<p class="muted">No device enrolled yet. Enrol one from a terminal on it: <code>ztproxy device enroll --proxy URL</code>.</p>{{end}}
`))

func devicesHTML(views []DeviceView, trust []string, canRemove bool) template.HTML {
	return executeHTML(devicesTemplate, map[string]any{"Devices": views, "Trust": trust, "CanRemove": canRemove})
}

var enrollTemplate = template.Must(template.New("enroll").Parse(`
<p>A terminal on your device asked to enrol it as <b>{{.Name}}</b> for <b>{{.User}}</b>. ztproxy will issue it a
short-lived certificate bound to you. Continue only if you just ran <code>ztproxy device enroll</code>.</p>
<form method="post" action="/.ztp/devices/enroll">
<input type="hidden" name="csr" value="{{.CSR}}"><input type="hidden" name="name" value="{{.Name}}">
<input type="hidden" name="port" value="{{.Port}}"><input type="hidden" name="state" value="{{.State}}">
<button id="enroll" type="submit">Enrol this device</button></form>
`))

func enrollConfirmHTML(req enrollRequest, user string) template.HTML {
	return executeHTML(enrollTemplate, map[string]string{"Name": req.name, "User": user, "CSR": req.csrParam, "Port": req.port, "State": req.state})
}

// executeHTML runs an html/template into a page body.
func executeHTML(t *template.Template, data any) template.HTML {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return template.HTML(template.HTMLEscapeString(fmt.Sprint("rendering failed: ", err)))
	}
	return template.HTML(b.String()) // produced by html/template: already escaped
}
