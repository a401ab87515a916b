package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"ztproxy/identity"
)

// MaxImportBytes bounds an MDM inventory export.
const MaxImportBytes = 64 << 20

// Import formats.
const (
	FormatJamf    = "jamf"
	FormatIntune  = "intune"
	FormatGeneric = "generic"
)

// ImportEntry is one device of an MDM export: how to find it in the
// inventory (device id or serial number) and what the MDM says.
type ImportEntry struct {
	DeviceID string
	Serial   string
	Name     string
	// Managed is nil when the export does not say.
	Managed *bool
	// Facts are the posture facts the export states (Source and At set on
	// import).
	Facts []Fact
}

// ParseImport parses an MDM export: "jamf" (Jamf Pro
// /api/v1/computers-inventory), "intune" (Microsoft Graph
// deviceManagement/managedDevices) or "generic" ({"devices": [{device_id
// | serial, managed, facts}]}). Any problem is an *InputError naming the
// entry, and nothing is imported.
func ParseImport(format string, data []byte) ([]ImportEntry, error) {
	if len(data) > MaxImportBytes {
		return nil, &InputError{Field: "import", Msg: fmt.Sprintf("larger than %d bytes", MaxImportBytes)}
	}
	switch format {
	case FormatJamf:
		return parseJamf(data)
	case FormatIntune:
		return parseIntune(data)
	case FormatGeneric:
		return parseGeneric(data)
	}
	return nil, &InputError{Field: "format", Msg: fmt.Sprintf("%q is not jamf, intune or generic", format)}
}

func decodeExport(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return &InputError{Field: "import", Msg: "not the expected JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err == nil {
		return &InputError{Field: "import", Msg: "trailing data after the JSON document"}
	}
	return nil
}

// parseJamf reads the fields of a Jamf Pro computer inventory it knows;
// everything else in the export is ignored.
func parseJamf(data []byte) ([]ImportEntry, error) {
	var doc struct {
		Results []struct {
			General struct {
				Name             string `json:"name"`
				RemoteManagement struct {
					Managed *bool `json:"managed"`
				} `json:"remoteManagement"`
			} `json:"general"`
			Hardware struct {
				SerialNumber string `json:"serialNumber"`
			} `json:"hardware"`
			OperatingSystem struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"operatingSystem"`
			DiskEncryption struct {
				BootPartition struct {
					State string `json:"partitionFileVault2State"`
				} `json:"bootPartitionEncryptionDetails"`
			} `json:"diskEncryption"`
			Security struct {
				FirewallEnabled *bool `json:"firewallEnabled"`
			} `json:"security"`
		} `json:"results"`
	}
	if err := decodeExport(data, &doc, false); err != nil {
		return nil, err
	}
	out := make([]ImportEntry, 0, len(doc.Results))
	for i, r := range doc.Results {
		e := ImportEntry{Serial: r.Hardware.SerialNumber, Name: r.General.Name, Managed: r.General.RemoteManagement.Managed}
		e.addText(identity.FactOS, strings.ToLower(r.OperatingSystem.Name))
		e.addText(identity.FactOSVersion, r.OperatingSystem.Version)
		switch r.DiskEncryption.BootPartition.State {
		case "ENCRYPTED":
			e.addBool(identity.FactDiskEncrypted, true)
		case "UNENCRYPTED", "DECRYPTED":
			e.addBool(identity.FactDiskEncrypted, false)
		}
		if r.Security.FirewallEnabled != nil {
			e.addBool(identity.FactFirewall, *r.Security.FirewallEnabled)
		}
		if err := e.check(fmt.Sprintf("results[%d]", i)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseIntune reads the fields of Microsoft Graph managedDevice objects
// it knows.
func parseIntune(data []byte) ([]ImportEntry, error) {
	var doc struct {
		Value []struct {
			DeviceName      string `json:"deviceName"`
			SerialNumber    string `json:"serialNumber"`
			OperatingSystem string `json:"operatingSystem"`
			OSVersion       string `json:"osVersion"`
			IsEncrypted     *bool  `json:"isEncrypted"`
			ManagementState string `json:"managementState"`
		} `json:"value"`
	}
	if err := decodeExport(data, &doc, false); err != nil {
		return nil, err
	}
	out := make([]ImportEntry, 0, len(doc.Value))
	for i, d := range doc.Value {
		managed := d.ManagementState == "" || d.ManagementState == "managed"
		e := ImportEntry{Serial: d.SerialNumber, Name: d.DeviceName, Managed: &managed}
		e.addText(identity.FactOS, strings.ToLower(d.OperatingSystem))
		e.addText(identity.FactOSVersion, d.OSVersion)
		if d.IsEncrypted != nil {
			e.addBool(identity.FactDiskEncrypted, *d.IsEncrypted)
		}
		if err := e.check(fmt.Sprintf("value[%d]", i)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseGeneric reads ztproxy's own import format, strictly.
func parseGeneric(data []byte) ([]ImportEntry, error) {
	var doc struct {
		Devices []struct {
			DeviceID string                     `json:"device_id"`
			Serial   string                     `json:"serial"`
			Managed  *bool                      `json:"managed"`
			Facts    map[string]json.RawMessage `json:"facts"`
		} `json:"devices"`
	}
	if err := decodeExport(data, &doc, true); err != nil {
		return nil, err
	}
	out := make([]ImportEntry, 0, len(doc.Devices))
	for i, d := range doc.Devices {
		where := fmt.Sprintf("devices[%d]", i)
		e := ImportEntry{DeviceID: d.DeviceID, Serial: d.Serial, Managed: d.Managed}
		for name, raw := range d.Facts {
			if _, ok := identity.KindOf(name); !ok {
				return nil, &InputError{Field: where + ".facts", Msg: fmt.Sprintf("%q is not a posture fact", truncate(name, 40))}
			}
			f, err := parseFactJSON(name, raw)
			if err != nil {
				return nil, &InputError{Field: where + ".facts." + name, Msg: err.Error()}
			}
			e.Facts = append(e.Facts, f)
		}
		if err := e.check(where); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (e *ImportEntry) addText(name, value string) {
	if value != "" {
		e.Facts = append(e.Facts, Fact{Name: name, Value: value})
	}
}

func (e *ImportEntry) addBool(name string, value bool) {
	e.Facts = append(e.Facts, Fact{Name: name, Value: encodeFact(value)})
}

// check requires a way to find the device and bounded text.
func (e *ImportEntry) check(where string) error {
	if e.DeviceID == "" && e.Serial == "" {
		return &InputError{Field: where, Msg: "has neither a device id nor a serial number"}
	}
	if e.DeviceID != "" && !ValidID(e.DeviceID) {
		return &InputError{Field: where + ".device_id", Msg: "is not a ztproxy device id"}
	}
	if e.Serial != "" {
		if err := checkText(e.Serial); err != nil {
			return &InputError{Field: where + ".serial", Msg: err.Error()}
		}
	}
	for _, f := range e.Facts {
		if kind, _ := identity.KindOf(f.Name); kind == identity.FactString && !f.Unknown {
			if err := checkText(f.Value); err != nil {
				return &InputError{Field: where + ".facts." + f.Name, Msg: err.Error()}
			}
		}
	}
	return nil
}

// ImportResult says what an import changed.
type ImportResult struct {
	// Updated are the device ids that were updated.
	Updated []string `json:"updated"`
	// Unmatched are the entries (device id or serial) with no active
	// device in the inventory.
	Unmatched []string `json:"unmatched"`
}

// Import applies an MDM export: each entry's device (by device id, else
// by a serial number only one active device has) gets the entry's
// managed flag and facts, with source "mdm:<format>". The whole export is
// parsed first, so bad input changes nothing.
func (inv *Inventory) Import(ctx context.Context, format string, data []byte) (ImportResult, error) {
	entries, err := ParseImport(format, data)
	if err != nil {
		return ImportResult{}, err
	}
	all, err := inv.cfg.Store.ListDevices(ctx, "")
	if err != nil {
		return ImportResult{}, err
	}
	bySerial := map[string][]string{}
	for _, r := range all {
		if r.Serial != "" && r.Status == identity.DeviceActive {
			bySerial[r.Serial] = append(bySerial[r.Serial], r.ID)
		}
	}
	source := SourceMDMPrefix + format
	now := inv.cfg.Now()
	res := ImportResult{Updated: []string{}, Unmatched: []string{}}
	for _, e := range entries {
		id := e.DeviceID
		if id == "" {
			if ids := bySerial[e.Serial]; len(ids) == 1 {
				id = ids[0]
			}
		}
		if id == "" {
			res.Unmatched = append(res.Unmatched, "serial "+e.Serial)
			continue
		}
		_, err := inv.update(ctx, id, func(r *Record) error {
			if r.Status != identity.DeviceActive {
				return ErrRevoked
			}
			if e.Managed != nil {
				r.Managed, r.ManagedSource = *e.Managed, source
			}
			for _, f := range e.Facts {
				f.Source, f.At = source, now
				r.setFact(f)
			}
			return nil
		})
		switch {
		case err == nil:
			res.Updated = append(res.Updated, id)
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrRevoked):
			res.Unmatched = append(res.Unmatched, "device "+id)
		default:
			return res, fmt.Errorf("devices: import stopped at device %s: %w", id, err)
		}
	}
	inv.event("imported")
	return res, nil
}

// parseFactJSON parses one fact value as JSON (null: unknown).
func parseFactJSON(name string, raw json.RawMessage) (Fact, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return Fact{Name: name, Unknown: true}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Fact{}, err
	}
	value, err := factFromJSON(name, v)
	if err != nil {
		return Fact{}, err
	}
	return Fact{Name: name, Value: value}, nil
}
