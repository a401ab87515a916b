package devices

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"ztproxy/identity"
)

// Inventory is the device inventory with its CA: the per-request lookup
// (DeviceFacts) and every change (enrolment, renewal, reports, removal,
// operator actions). It is safe for concurrent use and outlives
// configuration reloads (its cache is shared state).
type Inventory struct {
	cfg     Config
	ca      *CA
	prefix  string // "spiffe://<trust domain>/device/"
	cache   *recordCache
	vendors map[string]*Vendor // by issuer
}

// New checks cfg and returns the inventory.
func New(cfg Config) (*Inventory, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	ca, err := NewCA(cfg.CACert, cfg.CAKey, cfg.TrustDomain)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{
		cfg: cfg, ca: ca, prefix: SPIFFEID(cfg.TrustDomain, ""), cache: newRecordCache(&cfg),
		vendors: map[string]*Vendor{},
	}
	for i := range inv.cfg.Vendors {
		v := &inv.cfg.Vendors[i]
		inv.vendors[v.Issuer] = v
	}
	return inv, nil
}

// TrustDomain is the SPIFFE trust domain of device ids.
func (inv *Inventory) TrustDomain() string { return inv.cfg.TrustDomain }

// CACertificate is the device CA's certificate.
func (inv *Inventory) CACertificate() *x509.Certificate { return inv.ca.Certificate() }

// Forget drops what this replica cached about the device id: another
// process (an operator command through the operator socket) changed it.
func (inv *Inventory) Forget(id string) { inv.cache.forget(id) }

// PostureMaxAge is the age beyond which facts are not used.
func (inv *Inventory) PostureMaxAge() time.Duration { return inv.cfg.PostureMaxAge }

// DeviceID returns the device id of a certificate's SPIFFE id, or false
// when the certificate was not issued for a device of this trust domain.
func (inv *Inventory) DeviceID(spiffeID string) (string, bool) {
	id, ok := strings.CutPrefix(spiffeID, inv.prefix)
	return id, ok && ValidID(id)
}

// DeviceFacts adds what the inventory knows to the device of a verified
// client certificate: enrolled (the certificate is the device's current
// or previous one), owner, status, managed and posture. A certificate
// ztproxy did not issue is checked and not enrolled. When the store
// cannot be read the device is returned unchecked (not enrolled), so a
// policy that needs an enrolled device fails closed, while a device
// known to be revoked stays revoked. Cached answers cost no store call.
func (inv *Inventory) DeviceFacts(ctx context.Context, d identity.Device) identity.Device {
	if !d.Present {
		return d
	}
	id, ok := inv.DeviceID(d.SPIFFEID)
	if !ok {
		d.Checked = true
		inv.lookupEvent("foreign")
		return d
	}
	e, cached, err := inv.cache.get(ctx, id)
	if err != nil {
		inv.lookupEvent("error")
		inv.cfg.Logger.Warn("devices: inventory lookup failed; device treated as not enrolled", "device_id", id, "err", err)
		return d
	}
	if cached {
		inv.lookupEvent("cached")
	} else {
		inv.lookupEvent("fetched")
	}
	d.Checked = true
	rec := e.rec
	if rec == nil || !rec.matches(d.Fingerprint) {
		return d
	}
	p := e.resolved(inv.cfg.Now(), inv.cfg.PostureMaxAge)
	d.Enrolled, d.Owner, d.Status, d.Managed = true, rec.Owner, rec.Status, rec.Managed
	d.Posture, d.PostureTime, d.PostureStale = p.posture, p.at, p.stale
	return d
}

func (inv *Inventory) lookupEvent(result string) {
	if inv.cfg.OnLookup != nil {
		inv.cfg.OnLookup(result)
	}
}

func (inv *Inventory) event(name string) {
	if inv.cfg.OnEvent != nil {
		inv.cfg.OnEvent(name)
	}
}

// EnrollmentRequirement returns "" when p may enrol a device now, else
// the step-up that would let them (RequireMFA or RequireWebAuthn): a
// browser user who proved the configured factor within
// Enrollment.MaxAge.
func (inv *Inventory) EnrollmentRequirement(p *identity.Principal) string {
	req := inv.cfg.Enrollment.Require
	if p.AuthTime.IsZero() || inv.cfg.Now().Sub(p.AuthTime) > inv.cfg.Enrollment.MaxAge {
		return req
	}
	switch req {
	case RequireWebAuthn:
		if slices.Contains(p.AMR, "webauthn") {
			return ""
		}
	default:
		if p.HasMFA() {
			return ""
		}
	}
	return req
}

// Posture explains a device's posture for display: every fact with its
// value, source and time, whether it is too old to count and whether it
// is the value policy sees.
func (inv *Inventory) Posture(rec *Record) []FactView {
	now := inv.cfg.Now()
	used := map[string]*Fact{}
	for _, name := range identity.PostureFacts {
		if best, _, _ := rec.bestFact(name, now, inv.cfg.PostureMaxAge); best != nil {
			used[name] = best
		}
	}
	out := make([]FactView, 0, len(rec.Facts))
	for i := range rec.Facts {
		f := &rec.Facts[i]
		out = append(out, FactView{Fact: *f, Stale: !now.Before(f.usableUntil(inv.cfg.PostureMaxAge)), Used: used[f.Name] == f})
	}
	slices.SortFunc(out, func(a, b FactView) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out
}

// FactView is a fact as /.ztp/devices and `ztproxy devices show` list it.
type FactView struct {
	Fact
	// Stale: older than the posture max age, or past its expiry.
	Stale bool `json:"stale,omitempty"`
	// Used: this source's value is the one policy sees.
	Used bool `json:"used,omitempty"`
}
