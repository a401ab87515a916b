package authz

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ztproxy/identity"
)

// realisticPolicies returns 200 policies shaped like a real deployment: 36
// routes with five policies each (read and write permits by group, a
// step-up forbid on writes, an IP range rule, an office-hours rule) plus 20
// global rules about risk, devices, time and service identities.
func realisticPolicies() string {
	var b strings.Builder
	for r := range 36 {
		route := fmt.Sprintf("app-%d", r)
		fmt.Fprintf(&b, `
@id("%[1]s-read") permit (principal, action in [Action::"GET", Action::"HEAD"], resource == Route::"%[1]s")
when { principal in Group::"team-%[2]d" || principal in Group::"eng" };
@id("%[1]s-write") permit (principal, action in [Action::"POST", Action::"PUT", Action::"DELETE"], resource == Route::"%[1]s")
when { principal in Group::"admins-%[2]d" && context.identity.email_verified };
@id("%[1]s-write-mfa") @step_up("mfa") @reason("writes need a fresh second factor")
forbid (principal, action in [Action::"POST", Action::"PUT", Action::"DELETE"], resource == Route::"%[1]s")
unless { context.auth.mfa && context.auth.age_seconds < 900 };
@id("%[1]s-network") @reason("only from the corporate network")
forbid (principal, action, resource == Route::"%[1]s")
unless { context.network.client_ip.isInRange(ip("10.0.0.0/8")) || context.network.client_ip.isInRange(ip("192.168.%[2]d.0/24")) };
@id("%[1]s-hours") @reason("outside office hours")
forbid (principal, action, resource == Route::"%[1]s")
when { context.time.hour < 6 || context.time.hour > 22 || context.time.weekday == "sunday" };
`, route, r)
	}
	for g := range 4 {
		fmt.Fprintf(&b, `
@id("risk-high-%[1]d") @reason("this sign-in looks too risky")
forbid (principal, action, resource) when { context.risk.level == "high" && context.risk.score > %[1]d };
@id("risk-medium-%[1]d") @step_up("mfa")
forbid (principal, action, resource) when { context.risk.level == "medium" && !context.auth.mfa && context.risk.reasons.contains("new_country_%[1]d") };
@id("device-%[1]d") @reason("unmanaged device")
forbid (principal in Group::"contractors-%[1]d", action, resource) unless { context.device.present && context.device.managed };
@id("service-%[1]d")
permit (principal is Service, action == Action::"GET", resource) when { context.device.spiffe_id like "spiffe://corp/ns-%[1]d/*" };
@id("claims-%[1]d") @reason("department mismatch")
forbid (principal, action, resource) when { context.identity.claims has "department" && context.identity.claims.department == "blocked-%[1]d" };
`, g)
	}
	return b.String()
}

func benchRequest() identity.RequestContext {
	return identity.RequestContext{
		RequestID: "req-1",
		Route:     "app-7",
		Method:    "GET",
		Host:      "app-7.corp.example.com",
		Path:      "/dashboard",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		ClientIP:  netip.MustParseAddr("10.20.30.40"),
		Principal: identity.Principal{
			Kind:          identity.KindUser,
			ID:            "https://idp.corp.example.com#u-1234",
			Issuer:        "https://idp.corp.example.com",
			Subject:       "u-1234",
			Email:         "dev@corp.example.com",
			EmailVerified: true,
			Groups:        []string{"eng", "team-7", "staff"},
			Claims:        map[string]string{"department": "platform", "cost_center": "42"},
			AuthKind:      identity.AuthBrowser,
			AMR:           []string{"pwd", "otp"},
			ACR:           "silver",
			AuthTime:      time.Date(2024, 3, 5, 9, 50, 0, 0, time.UTC),
		},
		Device: identity.Device{
			Present: true, ID: "laptop-1", SPIFFEID: "spiffe://corp/device/laptop-1",
			Fingerprint: "ab12", Managed: true, Enrolled: true, Owner: "https://idp.example.com#alice", Status: identity.DeviceActive,
			Posture: identity.Posture{OS: "linux", DiskEncrypted: true, Known: 0b1001}, PostureTime: time.Date(2024, 3, 5, 9, 0, 0, 0, time.UTC),
		},
		Risk: identity.Risk{Score: 12, Level: identity.RiskLow, Reasons: []identity.RiskReason{{Code: "new_device", Points: 12}}},
		Time: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC),
	}
}

func BenchmarkDecide200(b *testing.B) {
	e, err := New(Config{Policies: []PolicyFile{{Name: "bench.cedar", Text: []byte(realisticPolicies())}}})
	if err != nil {
		b.Fatal(err)
	}
	if e.PolicyCount() != 200 {
		b.Fatalf("PolicyCount = %d, want 200", e.PolicyCount())
	}
	rc := benchRequest()
	d, err := e.Decide(&rc)
	if err != nil || d.Effect != identity.Allow {
		b.Fatalf("Decide = %+v, %v; want allow", d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(&rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide200AnyRoute decides a request for a route no policy names,
// so only the 20 global policies apply.
func BenchmarkDecide200AnyRoute(b *testing.B) {
	e, err := New(Config{Policies: []PolicyFile{{Name: "bench.cedar", Text: []byte(realisticPolicies())}}})
	if err != nil {
		b.Fatal(err)
	}
	rc := benchRequest()
	rc.Route = "unnamed"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(&rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildContext measures the context record alone.
func BenchmarkBuildContext(b *testing.B) {
	rc := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		buildContext(&rc, rc.Time, time.UTC, allLeaves, nil)
	}
}

// BenchmarkDecide200NoCache decides with the context caches disabled: every
// context record is built from scratch, the cost of a cache miss.
func BenchmarkDecide200NoCache(b *testing.B) {
	e, err := New(Config{Policies: []PolicyFile{{Name: "bench.cedar", Text: []byte(realisticPolicies())}}})
	if err != nil {
		b.Fatal(err)
	}
	e.caches = nil
	rc := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(&rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide200NextSecond advances the request time by a second per
// decision, as a busy session does: auth.age_seconds changes, so the auth
// and whole-context records miss the cache while the others hit.
func BenchmarkDecide200NextSecond(b *testing.B) {
	e, err := New(Config{Policies: []PolicyFile{{Name: "bench.cedar", Text: []byte(realisticPolicies())}}})
	if err != nil {
		b.Fatal(err)
	}
	rc := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		rc.Time = rc.Time.Add(time.Second)
		if _, err := e.Decide(&rc); err != nil {
			b.Fatal(err)
		}
	}
}
