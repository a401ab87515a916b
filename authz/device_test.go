package authz

import (
	"testing"
	"time"

	"ztproxy/identity"
)

// financePolicy is docs/devices.md's example: only enrolled, encrypted,
// managed devices of the signed-in user, with fresh posture.
const financePolicy = `
@id("finance-devices")
permit (principal is User, action, resource == Route::"finance")
when {
  context.device.enrolled && context.device.owner_matches && context.device.managed &&
  context.device.status == "active" &&
  context.device.posture.disk_encrypted && context.device.posture_age_seconds < 3600 &&
  !context.device.posture.unknown.contains("disk_encrypted")
};`

// Issue 16: context.device carries the inventory's facts, and
// owner_matches compares the device's owner with the principal.
func TestDeviceInventoryContext(t *testing.T) {
	e := newEngine(t, file("finance.cedar", financePolicy))
	good := func() identity.RequestContext {
		rc := alice()
		rc.Route = "finance"
		rc.Principal.ID = "https://idp.example.com#alice"
		rc.Device = identity.Device{
			Present: true, ID: "spiffe://corp/device/d1", SPIFFEID: "spiffe://corp/device/d1", Fingerprint: "ab",
			Checked: true, Enrolled: true, Owner: "https://idp.example.com#alice", Status: identity.DeviceActive, Managed: true,
			PostureTime: fixedNow.Add(-10 * time.Minute),
		}
		rc.Device.Posture.Set(identity.FactDiskEncrypted, true)
		return rc
	}
	tests := []struct {
		name string
		edit func(rc *identity.RequestContext)
		want identity.Effect
	}{
		{"enrolled, encrypted, owner", func(*identity.RequestContext) {}, identity.Allow},
		{"another user's device", func(rc *identity.RequestContext) { rc.Principal.ID = "https://idp.example.com#bob" }, identity.Deny},
		{"a service is never the owner", func(rc *identity.RequestContext) {
			rc.Principal.Kind = identity.KindService
			rc.Principal.ID = rc.Device.Owner
		}, identity.Deny},
		{"not enrolled", func(rc *identity.RequestContext) { rc.Device.Enrolled = false }, identity.Deny},
		{"unmanaged", func(rc *identity.RequestContext) { rc.Device.Managed = false }, identity.Deny},
		{"encryption unknown", func(rc *identity.RequestContext) { rc.Device.Posture = identity.Posture{} }, identity.Deny},
		{"not encrypted", func(rc *identity.RequestContext) { rc.Device.Posture.Set(identity.FactDiskEncrypted, false) }, identity.Deny},
		{"stale posture", func(rc *identity.RequestContext) { rc.Device.PostureTime = fixedNow.Add(-2 * time.Hour) }, identity.Deny},
		{"never reported", func(rc *identity.RequestContext) { rc.Device.PostureTime = time.Time{} }, identity.Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := good()
			tt.edit(&rc)
			got, err := e.Decide(&rc)
			if err != nil {
				t.Fatal(err)
			}
			if got.Effect != tt.want {
				t.Errorf("got %v (%v), want %v", got.Effect, got.Reasons, tt.want)
			}
		})
	}
}
