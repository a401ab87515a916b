package devices_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ztproxy/devices"
	"ztproxy/identity"
)

// Issue 16: an MDM export (Jamf Pro, Intune, or ztproxy's generic format)
// sets managed and posture facts with source mdm:<format>, matching
// devices by id or by the serial they reported; bad input changes
// nothing.
func TestImportMDM(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	mac, macCert := e.enroll(t, e.alice())
	win, winCert := e.enroll(t, e.alice())
	lin, _ := e.enroll(t, e.alice())
	if _, err := e.inv.Report(ctx, presented(macCert), []byte(`{"facts":{"os":"macos"},"serial":"C02JAMF01"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.inv.Report(ctx, presented(winCert), []byte(`{"facts":{"os":"windows"},"serial":"INTUNE-42"}`)); err != nil {
		t.Fatal(err)
	}
	jamf := `{"totalCount":2,"results":[
	 {"id":"1","general":{"name":"alice-mbp","remoteManagement":{"managed":true}},"hardware":{"serialNumber":"C02JAMF01","model":"MacBook Pro"},
	  "operatingSystem":{"name":"macOS","version":"14.4.1"},"diskEncryption":{"bootPartitionEncryptionDetails":{"partitionFileVault2State":"ENCRYPTED"}},
	  "security":{"firewallEnabled":true}},
	 {"id":"2","general":{"name":"unknown-mac"},"hardware":{"serialNumber":"C02NOBODY"}}]}`
	res, err := e.inv.Import(ctx, devices.FormatJamf, []byte(jamf))
	if err != nil || strings.Join(res.Updated, ",") != mac.Record.ID || strings.Join(res.Unmatched, ",") != "serial C02NOBODY" {
		t.Fatalf("jamf import = %+v, %v", res, err)
	}
	intune := `{"@odata.context":"x","value":[{"id":"g1","deviceName":"ALICE-PC","serialNumber":"INTUNE-42","operatingSystem":"Windows",
	  "osVersion":"10.0.22631","isEncrypted":false,"managementState":"managed","complianceState":"compliant"}]}`
	if res, err := e.inv.Import(ctx, devices.FormatIntune, []byte(intune)); err != nil || strings.Join(res.Updated, ",") != win.Record.ID {
		t.Fatalf("intune import = %+v, %v", res, err)
	}
	generic := fmt.Sprintf(`{"devices":[{"device_id":%q,"managed":true,"facts":{"disk_encrypted":true,"firewall":null}}]}`, lin.Record.ID)
	if res, err := e.inv.Import(ctx, devices.FormatGeneric, []byte(generic)); err != nil || strings.Join(res.Updated, ",") != lin.Record.ID {
		t.Fatalf("generic import = %+v, %v", res, err)
	}
	d := e.inv.DeviceFacts(ctx, presented(macCert))
	if !d.Managed || !d.Posture.DiskEncrypted || !d.Posture.Firewall || d.Posture.OSVersion != "14.4.1" {
		t.Errorf("mac after jamf: managed %v posture %+v", d.Managed, d.Posture)
	}
	d = e.inv.DeviceFacts(ctx, presented(winCert))
	if !d.Managed || d.Posture.DiskEncrypted || !d.Posture.IsKnown(identity.FactDiskEncrypted) {
		t.Errorf("windows after intune: managed %v posture %+v", d.Managed, d.Posture)
	}
	rec, _ := e.inv.Get(ctx, mac.Record.ID)
	if rec.ManagedSource != "mdm:jamf" {
		t.Errorf("managed source = %q", rec.ManagedSource)
	}

	before, _ := e.inv.Get(ctx, lin.Record.ID)
	for _, bad := range []struct{ format, data string }{
		{devices.FormatGeneric, fmt.Sprintf(`{"devices":[{"device_id":%q,"managed":false},{"serial":"x","facts":{"colour":"red"}}]}`, lin.Record.ID)},
		{devices.FormatGeneric, `{"devices":[{"managed":true}]}`},
		{devices.FormatGeneric, `{"devices":[],"extra":true}`},
		{devices.FormatJamf, `{"results":[{"hardware":{}}]}`},
		{devices.FormatIntune, `[1,2,3]`},
		{"csv", `a,b`},
	} {
		_, err := e.inv.Import(ctx, bad.format, []byte(bad.data))
		var in *devices.InputError
		if !errors.As(err, &in) {
			t.Errorf("%s %s: err = %v, want an InputError", bad.format, bad.data, err)
		}
	}
	after, _ := e.inv.Get(ctx, lin.Record.ID)
	if !after.Managed || after.Version != before.Version {
		t.Errorf("a refused import changed the device: %+v", after)
	}
}
