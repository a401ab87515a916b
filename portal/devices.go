package portal

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"ztproxy/decide"
	"ztproxy/devices"
	"ztproxy/identity"
)

// Device trust endpoints (issue 16): the user's device page and
// enrolment (browser), renewal and posture reports (the device itself,
// over mTLS).
const (
	DevicesPath      = "/.ztp/devices"
	DeviceRemovePath = DevicesPath + "/remove"
	DeviceEnrollPath = DevicesPath + "/enroll"
	DeviceRenewPath  = DevicesPath + "/renew"
	DeviceReportPath = DevicesPath + "/report"
)

// DeviceService is what the portal needs of the device inventory
// (implemented by *devices.Inventory, reached through the engine's
// Config.Devices).
type DeviceService interface {
	DeviceID(spiffeID string) (string, bool)
	PostureMaxAge() time.Duration
	EnrollmentRequirement(p *identity.Principal) string
	Enroll(ctx context.Context, p *identity.Principal, name string, csr []byte) (devices.Issued, error)
	Renew(ctx context.Context, d identity.Device, csr []byte) (devices.Issued, error)
	Report(ctx context.Context, d identity.Device, body []byte) (devices.ReportResult, error)
	List(ctx context.Context, owner string) ([]devices.Record, error)
	Remove(ctx context.Context, owner, id string) error
	Posture(rec *devices.Record) []devices.FactView
}

var _ DeviceService = (*devices.Inventory)(nil)

var errNoDevices = &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "device enrolment is not enabled on this proxy"}

// devicesOf returns the engine's device inventory, or nil.
func devicesOf(eng *decide.Engine) DeviceService {
	ds, _ := eng.Config().Devices.(DeviceService)
	return ds
}

// isDevicesPath reports whether p is a device endpoint.
func isDevicesPath(p string) bool {
	return p == DevicesPath || strings.HasPrefix(p, DevicesPath+"/")
}

// serveDevices dispatches the device endpoints.
func (pt *Portal) serveDevices(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	ds := devicesOf(x.Engine)
	if ds == nil {
		return errNoDevices
	}
	switch r.URL.Path {
	case DevicesPath:
		return pt.devicesPage(w, r, x, ds)
	case DeviceRemovePath:
		return pt.removeDevice(w, r, x, ds)
	case DeviceEnrollPath:
		if r.Method == http.MethodPost {
			return pt.enrollDevice(w, r, x, ds)
		}
		return pt.enrollPage(w, r, x, ds)
	case DeviceRenewPath:
		return pt.renewDevice(w, r, x, ds)
	case DeviceReportPath:
		return pt.reportPosture(w, r, x, ds)
	}
	return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "not found"}
}

// enrollRequest is the CLI's enrolment link: /.ztp/devices/enroll?
// csr=<base64url DER>&name=<device name>&port=<loopback port>&state=<S>.
type enrollRequest struct {
	csr         []byte
	csrParam    string
	name        string
	port, state string
}

// parseEnrollRequest reads the link's (or the confirmation form's)
// parameters; they come from `ztproxy device enroll`.
func parseEnrollRequest(q url.Values) (enrollRequest, error) {
	bad := func(msg string) (enrollRequest, error) {
		return enrollRequest{}, &decide.Error{Status: http.StatusBadRequest, Code: "bad_device_request", Msg: msg}
	}
	req := enrollRequest{csrParam: q.Get("csr"), name: q.Get("name"), port: q.Get("port"), state: q.Get("state")}
	port, err := strconv.Atoi(req.port)
	if err != nil || port < 1024 || port > 65535 || strconv.Itoa(port) != req.port || !cliStatePattern.MatchString(req.state) {
		return bad("this link is not from ztproxy device enroll")
	}
	if len(req.csrParam) > 2*devices.MaxCSRBytes {
		return bad("the certificate request is too large")
	}
	if req.csr, err = base64.RawURLEncoding.DecodeString(req.csrParam); err != nil {
		return bad("the certificate request is not base64url")
	}
	if _, err := devices.ParseCSR(req.csr); err != nil {
		return bad(err.Error())
	}
	if !deviceNamePattern.MatchString(req.name) {
		return bad("the device name must be 1 to 64 letters, digits, spaces, '.', '_' or '-'")
	}
	return req, nil
}

var deviceNamePattern = regexp.MustCompile(`^[\p{L}\p{N} ._-]{1,64}$`)

// enrollPage asks a signed-in user with a fresh second factor to confirm
// enrolling the device the CLI named; without that proof it sends them to
// step up first and back here.
func (pt *Portal) enrollPage(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return decide.ErrMethod
	}
	if !onExternalHost(x.Engine, r) {
		http.Redirect(w, r, x.Engine.Issuer()+r.URL.Path+"?"+r.URL.RawQuery, http.StatusFound)
		return nil
	}
	req, err := parseEnrollRequest(r.URL.Query())
	if err != nil {
		return err
	}
	self := x.Engine.Issuer() + DeviceEnrollPath + "?" + r.URL.RawQuery
	if err := pt.browserUser(w, r, x, self); err != nil {
		return err
	}
	if loc := enrollStepUp(x, ds, self); loc != "" {
		http.Redirect(w, r, loc, http.StatusFound)
		x.Status = http.StatusFound
		return nil
	}
	x.Status = http.StatusOK
	renderPage(w, http.StatusOK, pageData{Title: "Enrol this device", Body: enrollConfirmHTML(req, displayUser(x.RC.Principal))})
	return nil
}

// enrollStepUp is where the user must prove a fresh factor before
// enrolling (and come back to rd), or "" when they just did.
func enrollStepUp(x *decide.Exchange, ds DeviceService, rd string) string {
	switch ds.EnrollmentRequirement(&x.RC.Principal) {
	case "":
		return ""
	case devices.RequireWebAuthn:
		return x.Engine.Issuer() + decide.WebAuthnStepUpPath + "?" + url.Values{"rd": {rd}}.Encode()
	}
	return x.Engine.Issuer() + decide.StepUpPath + "?" + url.Values{"rd": {rd}, "req": {devices.RequireMFA}}.Encode()
}

// enrollDevice issues the certificate after the user confirmed on the
// page (a same-origin POST) and hands it to the CLI's loopback listener
// by a self-submitting form, like `ztproxy aws credential-process`.
func (pt *Portal) enrollDevice(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	if err := pt.portalPost(w, r, x); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_device_request", Msg: "malformed form"}
	}
	req, err := parseEnrollRequest(r.PostForm)
	if err != nil {
		return err
	}
	switch ds.EnrollmentRequirement(&x.RC.Principal) {
	case "":
	case devices.RequireWebAuthn:
		return &decide.Error{Status: http.StatusForbidden, Code: "device_enrollment_needs_webauthn",
			Msg: "enrolling a device needs a security key verified within the last minutes; start again from `ztproxy device enroll`"}
	default:
		return &decide.Error{Status: http.StatusForbidden, Code: "device_enrollment_needs_mfa",
			Msg: "enrolling a device needs a fresh second factor; start again from `ztproxy device enroll`"}
	}
	issued, err := ds.Enroll(r.Context(), &x.RC.Principal, req.name, req.csr)
	if err != nil {
		return deviceError(err)
	}
	pt.log.Info("device enrolled", "principal", x.RC.Principal.ID, "device_id", issued.Record.ID, "request_id", x.RC.RequestID)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Certificate})
	return handBack(w, x, req.port, req.state, map[string]string{"certificate": string(certPEM), "device_id": issued.Record.ID})
}

// browserUser authenticates a signed-in browser user (a bearer token or a
// device alone does not enrol or remove devices).
func (pt *Portal) browserUser(w http.ResponseWriter, r *http.Request, x *decide.Exchange, returnTo string) error {
	if err := pt.authenticateEndpoint(w, r, x, returnTo); err != nil {
		return err
	}
	if x.RC.Principal.AuthKind != identity.AuthBrowser {
		return &decide.Error{Status: http.StatusForbidden, Code: "browser_only", Msg: devicesBrowserOnly}
	}
	return nil
}

const devicesBrowserOnly = "devices are enrolled and removed from a signed-in browser"

// portalPost checks a state-changing device form post (browserPost).
func (pt *Portal) portalPost(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return pt.browserPost(w, r, x, x.Engine.Issuer()+DevicesPath, devicesBrowserOnly)
}

// removeDevice revokes one of the user's own devices (a form on the
// devices page).
func (pt *Portal) removeDevice(w http.ResponseWriter, r *http.Request, x *decide.Exchange, ds DeviceService) error {
	if err := pt.portalPost(w, r, x); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_device_request", Msg: "malformed form"}
	}
	if err := ds.Remove(r.Context(), x.RC.Principal.ID, r.PostForm.Get("id")); err != nil {
		return deviceError(err)
	}
	pt.log.Info("device removed by its owner", "principal", x.RC.Principal.ID, "device_id", r.PostForm.Get("id"), "request_id", x.RC.RequestID)
	http.Redirect(w, r, x.Engine.Issuer()+DevicesPath, http.StatusSeeOther)
	x.Status = http.StatusSeeOther
	return nil
}

// deviceError maps the inventory's errors to answers.
func deviceError(err error) error {
	var in *devices.InputError
	switch {
	case errors.As(err, &in):
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_device_request", Msg: in.Error(), Err: err}
	case errors.Is(err, devices.ErrNotEnrolled):
		return &decide.Error{Status: http.StatusForbidden, Code: "device_not_enrolled", Msg: "this client certificate is not an enrolled device's", Err: err}
	case errors.Is(err, devices.ErrRevoked):
		return &decide.Error{Status: http.StatusForbidden, Code: "device_revoked", Msg: "this device has been revoked or reported lost", Err: err}
	case errors.Is(err, devices.ErrNotCurrent):
		return &decide.Error{Status: http.StatusConflict, Code: "device_certificate_superseded", Msg: "this certificate was already renewed; use the newest one", Err: err}
	case errors.Is(err, devices.ErrTooManyDevices):
		return &decide.Error{Status: http.StatusConflict, Code: "too_many_devices", Msg: err.Error(), Err: err}
	case errors.Is(err, devices.ErrNotFound):
		return &decide.Error{Status: http.StatusNotFound, Code: "no_such_device", Msg: "no such device", Err: err}
	}
	return &decide.Error{Status: http.StatusServiceUnavailable, Code: "device_store_unavailable", Msg: "the device inventory cannot be reached right now; try again shortly", Err: err}
}
