package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode"
	"unicode/utf8"

	"ztproxy/identity"
)

// MaxReportBytes bounds a posture report.
const MaxReportBytes = 64 << 10

// maxFactTextBytes bounds a text fact (os, os_version, kernel) and a
// serial number.
const maxFactTextBytes = 128

// Report is what `ztproxy device report` sends to /.ztp/devices/report
// over mTLS: the facts it collected (null for a fact it could not read),
// the hardware serial when readable, and vendor posture assertions found
// on the device.
type Report struct {
	Facts            map[string]any `json:"facts"`
	Serial           string         `json:"serial,omitempty"`
	VendorAssertions []string       `json:"vendor_assertions,omitempty"`
}

// reportedFacts are the facts a device may state about itself; the score
// comes only from a vendor.
var reportedFacts = map[string]bool{
	identity.FactOS: true, identity.FactOSVersion: true, identity.FactKernel: true,
	identity.FactDiskEncrypted: true, identity.FactFirewall: true, identity.FactScreenLock: true,
}

// parsedReport is a report that passed parseReport.
type parsedReport struct {
	facts      []Fact // Source and At are set when applied
	serial     string
	assertions []string
}

// parseReport parses a report strictly: one JSON object of at most
// MaxReportBytes, no unknown fields, known fact names with values of
// their type (or null for unknown), bounded text. Any problem is an
// *InputError and nothing of the report is used.
func parseReport(data []byte) (parsedReport, error) {
	var out parsedReport
	if len(data) > MaxReportBytes {
		return out, &InputError{Field: "report", Msg: fmt.Sprintf("larger than %d bytes", MaxReportBytes)}
	}
	var wire struct {
		Facts            map[string]json.RawMessage `json:"facts"`
		Serial           string                     `json:"serial"`
		VendorAssertions []string                   `json:"vendor_assertions"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wire); err != nil {
		return out, &InputError{Field: "report", Msg: "not a report object: " + err.Error()}
	}
	if _, err := dec.Token(); err == nil {
		return out, &InputError{Field: "report", Msg: "trailing data after the report object"}
	}
	if len(wire.Facts) == 0 && len(wire.VendorAssertions) == 0 {
		return out, &InputError{Field: "facts", Msg: "the report states no facts"}
	}
	names := make([]string, 0, len(wire.Facts))
	for name := range wire.Facts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := parseReportedFact(name, wire.Facts[name])
		if err != nil {
			return out, err
		}
		out.facts = append(out.facts, f)
	}
	if wire.Serial != "" {
		if err := checkText(wire.Serial); err != nil {
			return out, &InputError{Field: "serial", Msg: err.Error()}
		}
		out.serial = wire.Serial
	}
	if len(wire.VendorAssertions) > maxAssertionsPerReport {
		return out, &InputError{Field: "vendor_assertions", Msg: fmt.Sprintf("at most %d", maxAssertionsPerReport)}
	}
	for _, a := range wire.VendorAssertions {
		if a == "" || len(a) > MaxAssertionBytes {
			return out, &InputError{Field: "vendor_assertions", Msg: fmt.Sprintf("each must be 1 to %d bytes", MaxAssertionBytes)}
		}
	}
	out.assertions = wire.VendorAssertions
	return out, nil
}

// parseReportedFact parses one reported fact: null is unknown.
func parseReportedFact(name string, raw json.RawMessage) (Fact, error) {
	if !reportedFacts[name] {
		return Fact{}, &InputError{Field: "facts." + truncate(name, 40), Msg: "not a fact a device may report"}
	}
	f, err := parseFactJSON(name, raw)
	if err != nil {
		return Fact{}, &InputError{Field: "facts." + name, Msg: err.Error()}
	}
	return f, nil
}

// factFromJSON encodes a decoded JSON value (bool, string, json.Number)
// as fact name's stored value, refusing a value of the wrong type.
func factFromJSON(name string, v any) (string, error) {
	kind, ok := identity.KindOf(name)
	if !ok {
		return "", fmt.Errorf("%q is not a posture fact", name)
	}
	switch kind {
	case identity.FactBool:
		if b, ok := v.(bool); ok {
			return encodeFact(b), nil
		}
		return "", errors.New("must be true, false or null")
	case identity.FactInt:
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil || f != math.Trunc(f) || f < 0 || f > 100 {
			return "", errors.New("must be an integer from 0 to 100")
		}
		return encodeFact(int(f)), nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errors.New("must be a string or null")
	}
	if err := checkText(s); err != nil {
		return "", err
	}
	return s, nil
}

// checkText accepts 1 to maxFactTextBytes of printable UTF-8.
func checkText(s string) error {
	if s == "" || len(s) > maxFactTextBytes || !utf8.ValidString(s) {
		return fmt.Errorf("must be 1 to %d bytes of UTF-8", maxFactTextBytes)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.Is(unicode.Cf, r) {
			return errors.New("must hold printable characters only")
		}
	}
	return nil
}

// ReportResult says what a report changed.
type ReportResult struct {
	DeviceID string             `json:"device_id"`
	Known    []string           `json:"known"`
	Unknown  []string           `json:"unknown"`
	Ignored  []IgnoredAssertion `json:"ignored_assertions,omitempty"`
}

// Report records a posture report from the device d (a verified client
// certificate, current or previous, of an active device): its facts with
// source "report", and the facts of every vendor assertion that verifies
// and is bound to this device. An assertion that does not is ignored and
// logged with the reason; the report's own facts still count. A report
// that does not parse changes nothing.
func (inv *Inventory) Report(ctx context.Context, d identity.Device, body []byte) (ReportResult, error) {
	parsed, err := parseReport(body)
	if err != nil {
		return ReportResult{}, err
	}
	id, ok := inv.DeviceID(d.SPIFFEID)
	if !d.Present || !ok {
		return ReportResult{}, ErrNotEnrolled
	}
	current, err := inv.cfg.Store.GetDevice(ctx, id)
	if err != nil {
		return ReportResult{}, inv.notEnrolled(err)
	}
	if err := usableBy(&current, d.Fingerprint, false); err != nil {
		return ReportResult{}, err
	}
	res := ReportResult{DeviceID: id}
	now := inv.cfg.Now()
	facts := parsed.facts
	for i := range facts {
		facts[i].Source, facts[i].At = SourceReport, now
	}
	for _, raw := range parsed.assertions {
		vf, ignored := inv.verifyAssertion(ctx, raw, &current)
		if ignored != nil {
			res.Ignored = append(res.Ignored, *ignored)
			inv.cfg.Logger.Warn("devices: vendor posture assertion ignored", "device_id", id, "vendor", ignored.Vendor, "reason", ignored.Reason)
			continue
		}
		facts = append(facts, vf...)
	}
	rec, err := inv.update(ctx, id, func(r *Record) error {
		if err := usableBy(r, d.Fingerprint, false); err != nil {
			return err
		}
		for _, f := range facts {
			r.setFact(f)
		}
		if parsed.serial != "" {
			r.Serial = parsed.serial
		}
		r.LastSeen = now
		return nil
	})
	if err != nil {
		return ReportResult{}, err
	}
	inv.event("reported")
	p := rec.resolve(now, inv.cfg.PostureMaxAge)
	res.Unknown = p.posture.Unknown()
	for _, name := range identity.PostureFacts {
		if p.posture.IsKnown(name) {
			res.Known = append(res.Known, name)
		}
	}
	return res, nil
}

// usableBy checks that the certificate with fingerprint may act for the
// device: the device is active and the certificate is its current one
// (or, unless currentOnly, the previous one).
func usableBy(r *Record, fingerprint string, currentOnly bool) error {
	switch {
	case currentOnly && fingerprint != r.Fingerprint && r.matches(fingerprint):
		return ErrNotCurrent
	case !r.matches(fingerprint):
		return ErrNotEnrolled
	case r.Status != identity.DeviceActive:
		return ErrRevoked
	}
	return nil
}

// notEnrolled maps a store miss to ErrNotEnrolled.
func (inv *Inventory) notEnrolled(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrNotEnrolled
	}
	return err
}
