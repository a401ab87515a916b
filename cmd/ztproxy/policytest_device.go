package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"ztproxy/identity"
)

// policyDevice is the device of a `policy test` input: the certificate's
// identity and what the inventory would say about it.
type policyDevice struct {
	ID          string                     `json:"id"`
	SPIFFEID    string                     `json:"spiffe_id"`
	Fingerprint string                     `json:"fingerprint"`
	Enrolled    bool                       `json:"enrolled"`
	Owner       string                     `json:"owner"`
	Status      string                     `json:"status"`
	Managed     bool                       `json:"managed"`
	Posture     map[string]json.RawMessage `json:"posture"`
	// PostureAgeSeconds is how old the posture is; absent means never
	// reported.
	PostureAgeSeconds *int64 `json:"posture_age_seconds"`
}

// device converts the input; a posture fact must be known and of its type
// (null leaves it unknown).
func (d *policyDevice) device(now time.Time) (identity.Device, error) {
	dev := identity.Device{
		Present: true, ID: d.ID, SPIFFEID: d.SPIFFEID, Fingerprint: d.Fingerprint, Checked: true,
		Enrolled: d.Enrolled, Owner: d.Owner, Status: d.Status, Managed: d.Managed,
	}
	if dev.ID == "" {
		dev.ID = d.SPIFFEID
	}
	switch d.Status {
	case "", identity.DeviceActive, identity.DeviceRevoked, identity.DeviceLost:
	default:
		return dev, fmt.Errorf("device.status: %q is not active, revoked or lost", d.Status)
	}
	for name, raw := range d.Posture {
		kind, ok := identity.KindOf(name)
		if !ok {
			return dev, fmt.Errorf("device.posture: %q is not a posture fact", name)
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		value, err := decodeFactValue(kind, raw)
		if err != nil {
			return dev, fmt.Errorf("device.posture.%s: %w", name, err)
		}
		dev.Posture.Set(name, value)
	}
	if d.PostureAgeSeconds != nil {
		dev.PostureTime = now.Add(-time.Duration(*d.PostureAgeSeconds) * time.Second)
	}
	return dev, nil
}

// decodeFactValue decodes a JSON posture value of kind.
func decodeFactValue(kind identity.FactKind, raw json.RawMessage) (any, error) {
	switch kind {
	case identity.FactBool:
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	case identity.FactInt:
		var n int
		err := json.Unmarshal(raw, &n)
		return n, err
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
