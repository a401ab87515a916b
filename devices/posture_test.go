package devices_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"ztproxy/authn"
	"ztproxy/devices"
	"ztproxy/identity"
)

// Issue 16: a report's facts reach the posture with their source and
// time; unknown stays unknown; facts older than the posture max age are
// dropped and the device is posture-stale.
func TestReportPosture(t *testing.T) {
	e := newEnv(t, func(c *devices.Config) { c.PostureMaxAge = time.Hour })
	ctx := context.Background()
	_, cert := e.enroll(t, e.alice())
	dev := presented(cert)
	res, err := e.inv.Report(ctx, dev, []byte(`{"facts":{"os":"debian","os_version":"12","disk_encrypted":true,"firewall":null,"screen_lock":false},"serial":"SN-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Known, ",") != "os,os_version,disk_encrypted,screen_lock" || strings.Join(res.Unknown, ",") != "kernel,firewall,score" {
		t.Errorf("result = %+v", res)
	}
	e.clock.Advance(31 * time.Second) // past the cache TTL: nothing stale from the cache
	d := e.inv.DeviceFacts(ctx, dev)
	p := d.Posture
	if p.OS != "debian" || p.OSVersion != "12" || !p.DiskEncrypted || p.ScreenLock || p.IsKnown(identity.FactFirewall) ||
		!p.IsKnown(identity.FactScreenLock) || d.PostureStale || d.PostureTime.IsZero() {
		t.Errorf("posture = %+v (time %v, stale %v)", p, d.PostureTime, d.PostureStale)
	}
	e.clock.Advance(time.Hour)
	d = e.inv.DeviceFacts(ctx, dev)
	if d.Posture.Known != 0 || !d.PostureStale || d.Posture.DiskEncrypted {
		t.Errorf("an hour later the facts still count: %+v stale %v", d.Posture, d.PostureStale)
	}
}

// Issue 16: bad reports are refused with a clear error and change
// nothing.
func TestReportRefusesBadInput(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	_, cert := e.enroll(t, e.alice())
	dev := presented(cert)
	for _, body := range []string{
		`{"facts":{"disk_encrypted":"yes"}}`,
		`{"facts":{"score":100}}`,
		`{"facts":{"colour":"blue"}}`,
		`{"facts":{"os":"debian"},"extra":1}`,
		`{"facts":{"os":"debian"}} {"facts":{}}`,
		`{"facts":{"os":"` + strings.Repeat("x", 200) + `"}}`,
		`{"facts":{"os":"deb\u202eian"}}`,
		`{"facts":{}}`,
		`not json`,
		`{"facts":{"os":"debian"},"vendor_assertions":["a","b","c","d","e"]}`,
	} {
		_, err := e.inv.Report(ctx, dev, []byte(body))
		var in *devices.InputError
		if !errors.As(err, &in) {
			t.Errorf("%s: err = %v, want an InputError", body, err)
		}
	}
	rec, _ := e.inv.Get(ctx, strings.TrimPrefix(dev.SPIFFEID, "spiffe://corp.example/device/"))
	if len(rec.Facts) != 0 {
		t.Errorf("refused reports stored facts: %+v", rec.Facts)
	}
	if _, err := e.inv.Report(ctx, identity.Device{Present: true, SPIFFEID: "spiffe://corp.example/device/aaaaaaaaaaaaaaaaaaaaaaaaaa", Fingerprint: "x"}, []byte(`{"facts":{"os":"x"}}`)); err == nil {
		t.Error("a report from an unknown device was accepted")
	}
}

// vendor signs posture assertions like an EDR does.
type vendor struct {
	key  *ecdsa.PrivateKey
	kid  string
	jwks string // file
}

func newVendor(t *testing.T) *vendor {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := &vendor{key: key, kid: "edr-1", jwks: filepath.Join(t.TempDir(), "edr.jwks")}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: v.kid, Algorithm: "ES256", Use: "sig"}}}
	data, _ := json.Marshal(set)
	if err := os.WriteFile(v.jwks, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *vendor) sign(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", v.kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// Issue 16: signed vendor posture counts only when it verifies with the
// vendor's keys, is bound to this device and unexpired; otherwise it is
// ignored with a logged reason and the report's own facts still count.
func TestVendorAssertions(t *testing.T) {
	v := newVendor(t)
	keys, err := authn.KeySetFromSource(v.jwks, authn.KeySetConfig{Name: "edr"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *devices.Config) {
		c.Vendors = []devices.Vendor{{Name: "edr", Issuer: "https://edr.example", ScoreClaim: "assessment.overall",
			FactClaims: map[string]string{identity.FactDiskEncrypted: "assessment.encrypted"}, Keys: keys}}
	})
	ctx := context.Background()
	issued, cert := e.enroll(t, e.alice())
	_, otherCert := e.enroll(t, e.alice())
	dev, id := presented(cert), issued.Record.ID
	now := e.clock.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "https://edr.example", "sub": id, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"assessment": map[string]any{"overall": 85, "encrypted": true}}
		if edit != nil {
			edit(c)
		}
		return c
	}
	wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := []struct {
		name, raw, reason string
	}{
		{"wrong key", v.sign(t, wrongKey, claims(nil)), "signature"},
		{"another device", v.sign(t, v.key, claims(func(c map[string]any) { c["sub"] = presented(otherCert).SPIFFEID })), "bound to another device"},
		{"expired", v.sign(t, v.key, claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), "expired"},
		{"no expiry", v.sign(t, v.key, claims(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"unknown issuer", v.sign(t, v.key, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), "no vendor is configured"},
		{"score out of range", v.sign(t, v.key, claims(func(c map[string]any) { c["assessment"] = map[string]any{"overall": 250} })), "score"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"facts": map[string]any{"os": "macos"}, "vendor_assertions": []string{tt.raw}})
			res, err := e.inv.Report(ctx, dev, body)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Ignored) != 1 || !strings.Contains(res.Ignored[0].Reason, tt.reason) {
				t.Errorf("ignored = %+v, want a reason with %q", res.Ignored, tt.reason)
			}
			if !strings.Contains(e.log.String(), "vendor posture assertion ignored") {
				t.Error("no log line for the ignored assertion")
			}
			e.clock.Advance(31 * time.Second)
			if d := e.inv.DeviceFacts(ctx, dev); d.Posture.IsKnown(identity.FactScore) || d.Posture.OS != "macos" {
				t.Errorf("posture after an ignored assertion: %+v", d.Posture)
			}
		})
	}
	body, _ := json.Marshal(map[string]any{"facts": map[string]any{"disk_encrypted": false}, "vendor_assertions": []string{v.sign(t, v.key, claims(nil))}})
	if res, err := e.inv.Report(ctx, dev, body); err != nil || len(res.Ignored) != 0 {
		t.Fatalf("good assertion: %+v, %v", res, err)
	}
	e.clock.Advance(31 * time.Second)
	d := e.inv.DeviceFacts(ctx, dev)
	// The vendor outranks the device's own report of disk_encrypted.
	if d.Posture.Score != 85 || !d.Posture.DiskEncrypted {
		t.Errorf("posture with a good assertion: %+v", d.Posture)
	}
	// The assertion's facts end with its exp.
	e.clock.Advance(time.Hour)
	if d := e.inv.DeviceFacts(ctx, dev); d.Posture.IsKnown(identity.FactScore) || d.Posture.DiskEncrypted {
		t.Errorf("vendor facts outlived the assertion: %+v", d.Posture)
	}
}
