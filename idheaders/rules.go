package idheaders

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/template"

	"ztproxy/identity"
)

// MaxTemplateValue bounds a rendered header value; a longer one is
// refused like a hostile one.
const MaxTemplateValue = 8 << 10

// ErrHostileValue is returned when a header template renders a value that
// is not a safe header field value: a control character (CR, LF, NUL …),
// a byte outside printable ASCII, or more than MaxTemplateValue bytes. The
// request must be refused rather than forwarded without the header the
// upstream relies on.
var ErrHostileValue = errors.New("header template rendered an unsafe value (control or non-ASCII byte, or too long)")

// Preset names a set of response headers a route can ask for by name.
const PresetSecurity = "security"

// securityPreset is what "preset: security" adds to responses: HSTS (on
// https only), no MIME sniffing, no framing by other sites, a strict
// referrer policy. Entries of the route's own set win.
var securityPreset = []struct{ name, value string }{
	{"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

// templateFields lists TemplateData's fields for error messages.
const templateFields = `{{.User}} {{.Subject}} {{.Issuer}} {{.Email}} {{.Username}} {{.Name}} {{.Groups}} {{.Device}} {{.Route}} {{.RequestID}} {{index .Claims "name"}}`

// TemplateData is what a header template sees: {{.Email}}, {{.Groups}}
// (comma-separated), {{.User}} (the principal id), {{.Subject}},
// {{.Issuer}}, {{.Username}}, {{.Name}}, {{.Device}}, {{.Route}},
// {{.RequestID}} and {{index .Claims "claim"}}.
type TemplateData struct {
	User, Subject, Issuer, Email, Username, Name, Groups, Device, Route, RequestID string
	Claims                                                                         map[string]string
}

// NewTemplateData is the template view of a request context.
func NewTemplateData(rc *identity.RequestContext) TemplateData {
	p := &rc.Principal
	d := TemplateData{User: p.ID, Subject: p.Subject, Issuer: p.Issuer, Email: p.Email, Username: p.Username,
		Name: p.Name, Groups: strings.Join(p.Groups, ","), Route: rc.Route, RequestID: rc.RequestID, Claims: p.Claims}
	if p.Kind == identity.KindAnonymous {
		d.User = ""
	}
	if rc.Device.Present {
		d.Device = rc.Device.ID
	}
	return d
}

// Rules are a route's compiled header rules: headers to remove, then
// headers to set (literal or templated).
type Rules struct {
	remove []string // canonical names
	set    []setRule
}

type setRule struct {
	name    string // canonical
	literal string
	tmpl    *template.Template // nil for a literal
	// fromHSTS: the preset's Strict-Transport-Security is sent on https
	// only (a browser ignores it on http anyway).
	fromHSTS bool
}

// RuleSpec is the configuration of one direction's header rules.
type RuleSpec struct {
	Set    map[string]string
	Remove []string
	// Preset adds a named set of headers ("security"); response only.
	Preset string
}

// NameProblem says why a route may not set or remove a header name, or ""
// when it may. X-Ztp-* are the proxy's own (anti-spoofing is absolute:
// no route can make a client-supplied identity header reach an upstream,
// nor forge one); framing and hop-by-hop headers belong to the
// transport; Host has host_rewrite; X-Forwarded-For/-Host/-Proto are set
// by the proxy.
func NameProblem(name string, request bool) string {
	if name == "" || !validToken(name) {
		return "not a valid header name"
	}
	norm := NormalizeName(name)
	switch {
	case strings.HasPrefix(norm, "x-ztp-") || norm == "x-ztp":
		return "X-Ztp-* headers are the proxy's own (use pass_identity_headers)"
	case slices.Contains(framingHeaders, norm) || slices.Contains(hopHeaders, norm):
		return "a framing or hop-by-hop header cannot be set or removed"
	case request && norm == "host":
		return "use host_rewrite or preserve_host"
	case request && (norm == "x-forwarded-for" || norm == "x-forwarded-host" || norm == "x-forwarded-proto"):
		return "set by the proxy from the connection"
	case strings.IndexByte(name, '_') >= 0:
		return "use '-', not '_' (CGI-style upstreams merge the two spellings)"
	}
	return ""
}

var hopHeaders = []string{"connection", "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization"}

// CompileRules checks and compiles a direction's rules; request says
// whether they apply to forwarded requests (else to responses). Every
// problem is reported, each prefixed with its key ("set.X-Name: …").
func CompileRules(spec RuleSpec, request bool) (*Rules, error) {
	var errs []error
	r := &Rules{}
	for _, name := range spec.Remove {
		if msg := NameProblem(name, request); msg != "" {
			errs = append(errs, fmt.Errorf("remove: %q: %s", name, msg))
			continue
		}
		r.remove = append(r.remove, http.CanonicalHeaderKey(name))
	}
	names := make([]string, 0, len(spec.Set))
	for name := range spec.Set {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic errors and order
	for _, name := range names {
		rule, err := compileSet(name, spec.Set[name], request)
		if err != nil {
			errs = append(errs, fmt.Errorf("set.%s: %w", name, err))
			continue
		}
		r.set = append(r.set, rule)
	}
	switch spec.Preset {
	case "":
	case PresetSecurity:
		if request {
			errs = append(errs, errors.New("preset: only response_headers have a preset"))
			break
		}
		for _, p := range securityPreset {
			if !r.sets(p.name) {
				r.set = append(r.set, setRule{name: p.name, literal: p.value, fromHSTS: p.name == "Strict-Transport-Security"})
			}
		}
	default:
		errs = append(errs, fmt.Errorf("preset: must be %q, not %q", PresetSecurity, spec.Preset))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(r.set) == 0 && len(r.remove) == 0 {
		return nil, nil
	}
	return r, nil
}

func (r *Rules) sets(name string) bool {
	return slices.ContainsFunc(r.set, func(s setRule) bool { return s.name == http.CanonicalHeaderKey(name) })
}

func compileSet(name, value string, request bool) (setRule, error) {
	if msg := NameProblem(name, request); msg != "" {
		return setRule{}, errors.New(msg)
	}
	rule := setRule{name: http.CanonicalHeaderKey(name)}
	if !strings.Contains(value, "{{") {
		if !SafeTemplateValue(value) {
			return setRule{}, errors.New("the value must be printable ASCII (no CR, LF or other control byte), at most 8 KiB")
		}
		rule.literal = value
		return rule, nil
	}
	// missingkey=zero: a claim the token lacks renders as "", never as
	// "<no value>".
	t, err := template.New(name).Option("missingkey=zero").Parse(value)
	if err != nil {
		return setRule{}, fmt.Errorf("template: %w", err)
	}
	// Render once against an empty identity: a template that names a
	// field TemplateData lacks fails here, at load, not per request.
	var b strings.Builder
	if err := t.Execute(&b, TemplateData{}); err != nil {
		return setRule{}, fmt.Errorf("template does not render (%v); fields: %s", err, templateFields)
	}
	if !SafeTemplateValue(b.String()) {
		return setRule{}, ErrHostileValue
	}
	rule.tmpl = t
	return rule, nil
}

// SafeTemplateValue reports whether v may be sent as a header value:
// printable ASCII and tab only, at most MaxTemplateValue bytes.
func SafeTemplateValue(v string) bool {
	if len(v) > MaxTemplateValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// Apply removes, then sets, the rules' headers on h. data renders the
// templates (it is built only when a rule needs it); tls says whether
// the client connection is https. An unsafe rendered value stops with
// ErrHostileValue: the caller must refuse the request or response.
func (r *Rules) Apply(h http.Header, rc *identity.RequestContext, tls bool) error {
	r.Remove(h)
	return r.Render(h, rc, tls)
}

// Remove deletes the headers the rules remove.
func (r *Rules) Remove(h http.Header) {
	for _, name := range r.remove {
		delete(h, name)
	}
}

// Render sets the headers the rules set on h (see Apply).
func (r *Rules) Render(h http.Header, rc *identity.RequestContext, tls bool) error {
	var data *TemplateData
	var b strings.Builder
	for i := range r.set {
		s := &r.set[i]
		if s.fromHSTS && !tls {
			continue
		}
		v := s.literal
		if s.tmpl != nil {
			if data == nil {
				d := NewTemplateData(rc)
				data = &d
			}
			b.Reset()
			if err := s.tmpl.Execute(&b, data); err != nil {
				return fmt.Errorf("header %s: %w", s.name, err)
			}
			v = b.String()
			if !SafeTemplateValue(v) {
				return fmt.Errorf("header %s: %w", s.name, ErrHostileValue)
			}
		}
		h[s.name] = []string{v}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// CheckSet checks one set entry (name and value or template) without
// keeping it; config validation reports each entry at its own path.
func CheckSet(name, value string, request bool) error {
	_, err := compileSet(name, value, request)
	return err
}
