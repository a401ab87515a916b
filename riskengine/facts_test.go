package riskengine

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone database is part of the binary, as in config

	"ztproxy/identity"
)

func TestNetworkOf(t *testing.T) {
	for _, tt := range []struct{ ip, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:abcd:12::1", "2001:db8:abcd::/48"},
	} {
		got, ok := networkOf(netip.MustParseAddr(tt.ip))
		if !ok || got.String() != tt.want {
			t.Errorf("networkOf(%s) = %s, %v; want %s", tt.ip, got, ok, tt.want)
		}
	}
	if _, ok := networkOf(netip.Addr{}); ok {
		t.Error("networkOf(invalid) is ok")
	}
}

func TestDeviceKey(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tt := range []struct {
		d    identity.Device
		want string
	}{
		{identity.Device{}, ""},
		{identity.Device{Present: true, ID: "spiffe://corp/laptop/1", Fingerprint: "ab"}, "spiffe://corp/laptop/1"},
		{identity.Device{Present: true, Fingerprint: "ab"}, "ab"},
	} {
		if got := deviceKey(&tt.d); got != tt.want {
			t.Errorf("deviceKey(%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := deviceKey(&identity.Device{Present: true, ID: long}); len(got) > maxKeyLen || !strings.HasPrefix(got, "sha256:") {
		t.Errorf("long id key = %q", got)
	}
}

func TestHourOfWeek(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal("time zone database:", err)
	}
	if got := hourOfWeek(testNow, time.UTC); got != 82 {
		t.Errorf("UTC: %d, want 82 (Wednesday 10:00)", got)
	}
	if got := hourOfWeek(testNow, berlin); got != 83 {
		t.Errorf("Berlin: %d, want 83 (Wednesday 11:00)", got)
	}
	if got := hourOfWeek(time.Date(2026, time.March, 7, 23, 30, 0, 0, time.UTC), time.UTC); got != 167 {
		t.Errorf("Saturday 23:30: %d, want 167", got)
	}
}

// TestForwardDecay: adding scaled increments and dividing on read halves a
// request's weight per half-life, whichever epoch is used.
func TestForwardDecay(t *testing.T) {
	half := 14 * 24 * time.Hour
	old := testNow.Add(-half)
	stored := decayScale(old, DefaultHourEpoch, half) + decayScale(testNow, DefaultHourEpoch, half)
	if got := stored / decayScale(testNow, DefaultHourEpoch, half); math.Abs(got-1.5) > 1e-9 {
		t.Errorf("decayed weight of one request now and one a half-life ago = %v, want 1.5", got)
	}
	if s := decayScale(DefaultHourEpoch.Add(100*365*24*time.Hour), DefaultHourEpoch, half); math.IsInf(s, 0) || s > 1e125 {
		t.Errorf("scale after 100 years = %v; the cap must keep it finite and below DynamoDB's limit", s)
	}
}

func TestLocation(t *testing.T) {
	l := location{lat: 52.52, lon: -13.4, at: time.Unix(1767225600, 0), ok: true}
	enc := encodeLocation(l)
	if enc != "52.5200,-13.4000@1767225600" {
		t.Errorf("encodeLocation = %q", enc)
	}
	if got := parseLocation(enc); got != l {
		t.Errorf("parseLocation(%q) = %+v, want %+v", enc, got, l)
	}
	for _, bad := range []string{"", "52,13", "x,y@1", "95,13@1", "52,13@x"} {
		if parseLocation(bad).ok {
			t.Errorf("parseLocation(%q) is ok", bad)
		}
	}
	berlin := location{lat: 52.52, lon: 13.40, at: testNow, ok: true}
	nyc := location{lat: 40.71, lon: -74.01, ok: true}
	if d := distanceKm(berlin, nyc); d < 6300 || d > 6450 {
		t.Errorf("Berlin–New York = %.0f km", d)
	}
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{time.Hour, true}, {5 * time.Hour, true}, {8 * time.Hour, false}} {
		nyc.at = testNow.Add(tt.after)
		if got := impossibleTravel(berlin, nyc); got != tt.want {
			t.Errorf("Berlin to New York in %s: impossible = %v", tt.after, got)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "store is required") {
		t.Errorf("New without a store: %v", err)
	}
	_, err := New(Config{
		Store: newFakeStore(), Thresholds: Thresholds{Medium: 80, High: 50}, OnStoreError: "panic",
		ProfileTTL: -time.Second, FailedAuthThreshold: 100,
	})
	for _, want := range []string{"thresholds", "on_store_error", "profile_ttl", "failed_auth_threshold"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	cfg, err := Config{Store: newFakeStore(), Weights: Weights{Velocity: -1}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Weights.Velocity != 0 || cfg.Weights.NewNetwork != 25 || cfg.Thresholds != (Thresholds{30, 70}) ||
		cfg.UnknownUserScore != 40 || cfg.ProfileTTL != time.Minute || cfg.OnStoreError != StoreErrorStepUp {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}
