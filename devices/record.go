package devices

import (
	"strconv"
	"strings"
	"time"

	"ztproxy/identity"
)

// Fact sources. A fact's value in the device's posture comes from the
// most trusted source with a fresh, known value: a vendor assertion
// (signed by the vendor), then an MDM import or an operator, then the
// device's own report.
const (
	SourceReport   = "report"
	SourceOperator = "operator"
	// SourceMDMPrefix and SourceVendorPrefix are followed by the import
	// format or the vendor's configured name ("mdm:jamf",
	// "vendor:crowdstrike").
	SourceMDMPrefix    = "mdm:"
	SourceVendorPrefix = "vendor:"
)

// sourceRank orders sources by trust; higher wins.
func sourceRank(source string) int {
	switch {
	case strings.HasPrefix(source, SourceVendorPrefix):
		return 3
	case strings.HasPrefix(source, SourceMDMPrefix), source == SourceOperator:
		return 2
	default:
		return 1
	}
}

// Fact is one posture fact as one source stated it.
type Fact struct {
	Name string `json:"name"`
	// Value is the encoded value: "true"/"false", a decimal integer or
	// text, as identity.KindOf(Name) says. Empty when Unknown.
	Value string `json:"value,omitempty"`
	// Unknown says the source could not tell (a report from an OS where
	// the fact cannot be read).
	Unknown bool   `json:"unknown,omitempty"`
	Source  string `json:"source"`
	// At is when the fact was recorded (a vendor assertion's iat).
	At time.Time `json:"at"`
	// Expires, when set, ends the fact's use (a vendor assertion's exp).
	Expires time.Time `json:"expires,omitzero"`
}

// Record is one device in the inventory.
type Record struct {
	// ID is the device id, the last segment of its SPIFFE id
	// spiffe://<trust domain>/device/<id>.
	ID    string `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// Status is identity.DeviceActive, DeviceRevoked or DeviceLost.
	Status       string    `json:"status"`
	StatusReason string    `json:"status_reason,omitempty"`
	StatusBy     string    `json:"status_by,omitempty"`
	StatusAt     time.Time `json:"status_at,omitzero"`
	// Fingerprint is the lower-case hex SHA-256 of the current
	// certificate; PreviousFingerprint the one it replaced at the last
	// renewal, still accepted until it expires.
	Fingerprint         string    `json:"fingerprint"`
	NotAfter            time.Time `json:"not_after"`
	PreviousFingerprint string    `json:"previous_fingerprint,omitempty"`
	EnrolledAt          time.Time `json:"enrolled_at"`
	// LastSeen is the last enrolment, renewal or report (not every
	// request: that would be a store write per request).
	LastSeen      time.Time `json:"last_seen"`
	Managed       bool      `json:"managed"`
	ManagedSource string    `json:"managed_source,omitempty"`
	// Serial is the hardware serial number the device reported or an MDM
	// import named; MDM imports match devices by it.
	Serial string `json:"serial,omitempty"`
	Facts  []Fact `json:"facts,omitempty"`
	// Version is the store's version of the record, for conditional
	// updates; it is not part of the stored document.
	Version int64 `json:"-"`
}

// maxFacts bounds the facts of one record (every fact from a handful of
// sources).
const maxFacts = 64

// setFact records f, replacing the same fact from the same source.
func (r *Record) setFact(f Fact) {
	for i := range r.Facts {
		if r.Facts[i].Name == f.Name && r.Facts[i].Source == f.Source {
			r.Facts[i] = f
			return
		}
	}
	if len(r.Facts) < maxFacts {
		r.Facts = append(r.Facts, f)
	}
}

// matches reports whether fingerprint is the device's current or previous
// certificate.
func (r *Record) matches(fingerprint string) bool {
	return fingerprint != "" && (fingerprint == r.Fingerprint || fingerprint == r.PreviousFingerprint)
}

// resolvedPosture is a record's posture at one time, with how long it
// stays the same.
type resolvedPosture struct {
	posture identity.Posture
	at      time.Time // the oldest fact used; zero when none
	stale   bool      // facts exist, but all known ones are too old
	// until is when a fact in use ages out or expires (or an unused one
	// does, which changes nothing but is simpler); zero means never.
	until time.Time
}

// resolve picks, for every fact name, the value of bestFact.
func (r *Record) resolve(now time.Time, maxAge time.Duration) resolvedPosture {
	var out resolvedPosture
	sawOld := false
	for _, name := range identity.PostureFacts {
		best, until, old := r.bestFact(name, now, maxAge)
		sawOld = sawOld || old
		if !until.IsZero() && (out.until.IsZero() || until.Before(out.until)) {
			out.until = until
		}
		if best == nil || !out.posture.Set(name, decodeFact(name, best.Value)) {
			continue
		}
		if out.at.IsZero() || best.At.Before(out.at) {
			out.at = best.At
		}
	}
	out.stale = sawOld && out.posture.Known == 0
	return out
}

// bestFact returns the fact named name from the most trusted source that
// is known, unexpired and younger than maxAge (ties go to the newest);
// until is when the first of the usable facts stops being usable, and old
// says a known fact was dropped for its age.
func (r *Record) bestFact(name string, now time.Time, maxAge time.Duration) (best *Fact, until time.Time, old bool) {
	for i := range r.Facts {
		f := &r.Facts[i]
		if f.Name != name || f.Unknown {
			continue
		}
		end := f.usableUntil(maxAge)
		if !now.Before(end) {
			old = true
			continue
		}
		if until.IsZero() || end.Before(until) {
			until = end
		}
		if best == nil || sourceRank(f.Source) > sourceRank(best.Source) ||
			sourceRank(f.Source) == sourceRank(best.Source) && f.At.After(best.At) {
			best = f
		}
	}
	return best, until, old
}

// usableUntil is when the fact stops counting: maxAge after it was
// recorded, or its expiry if that comes first.
func (f *Fact) usableUntil(maxAge time.Duration) time.Time {
	end := f.At.Add(maxAge)
	if !f.Expires.IsZero() && f.Expires.Before(end) {
		end = f.Expires
	}
	return end
}

// decodeFact turns a stored value into the Go type identity.Posture.Set
// takes; nil for a value that does not decode (never stored by this
// package).
func decodeFact(name, value string) any {
	kind, _ := identity.KindOf(name)
	switch kind {
	case identity.FactBool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil
		}
		return b
	case identity.FactInt:
		n, err := strconv.Atoi(value)
		if err != nil {
			return nil
		}
		return n
	}
	return value
}

// encodeFact is decodeFact's inverse.
func encodeFact(value any) string {
	switch v := value.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	}
	return ""
}
