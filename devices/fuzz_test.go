package devices

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"ztproxy/identity"
)

func csrSeeds(f *testing.F) [][]byte {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	var out [][]byte
	for _, key := range []any{ec, p521, ed, small} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "admin"}, DNSNames: []string{"evil.example"},
		}, key)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, der, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	return out
}

// FuzzParseCSR: the enrolment and renewal parser sees attacker bytes; it
// must never panic, and an accepted request has a self-signature that
// verifies and an accepted key type.
func FuzzParseCSR(f *testing.F) {
	for _, s := range csrSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := ParseCSR(data)
		if err != nil {
			var in *InputError
			if !errors.As(err, &in) {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		if checkDeviceKey(pub) != nil || len(data) > MaxCSRBytes {
			t.Fatalf("accepted %T", pub)
		}
	})
}

// Issue 16: only the key of a CSR counts, and weak or odd keys are
// refused.
func TestParseCSRKeys(t *testing.T) {
	seeds := csrSeeds(&testing.F{})
	for i, want := range []bool{true, true, false, false, true, true, false, false} {
		_, err := ParseCSR(seeds[i])
		if (err == nil) != want {
			t.Errorf("seed %d: err = %v, want accepted=%v", i, err, want)
		}
	}
	two := append(append([]byte{}, seeds[1]...), seeds[1]...)
	if _, err := ParseCSR(two); err == nil {
		t.Error("two PEM blocks accepted")
	}
}

// FuzzParseReport: device reports are attacker bytes (a device owner can
// send anything); accepted reports hold known facts of their type only.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`{"facts":{"os":"debian","os_version":"12","kernel":"6.1.0","disk_encrypted":true,"firewall":null,"screen_lock":false},"serial":"SN1"}`,
		`{"facts":{"score":5}}`, `{"facts":{"os":1}}`, `{"facts":{"os":"a\u0000b"}}`, `{"vendor_assertions":["x.y.z"]}`,
		`{"facts":{"disk_encrypted":"true"}}`, `{"facts":{}} trailing`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := parseReport(data)
		if err != nil {
			var in *InputError
			if !errors.As(err, &in) {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		for _, fact := range rep.facts {
			if !reportedFacts[fact.Name] {
				t.Fatalf("accepted fact %q", fact.Name)
			}
			if !fact.Unknown && decodeFact(fact.Name, fact.Value) == nil {
				t.Fatalf("accepted undecodable %s=%q", fact.Name, fact.Value)
			}
		}
	})
}

// FuzzParseImport: an MDM export is operator input, but it comes from
// another system; the parser must not panic and must bound what it
// accepts.
func FuzzParseImport(f *testing.F) {
	f.Add("generic", []byte(`{"devices":[{"device_id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","managed":true,"facts":{"firewall":true}}]}`))
	f.Add("jamf", []byte(`{"results":[{"hardware":{"serialNumber":"C02"},"operatingSystem":{"name":"macOS","version":"14"}}]}`))
	f.Add("intune", []byte(`{"value":[{"serialNumber":"X","isEncrypted":true}]}`))
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		entries, err := ParseImport(format, data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.DeviceID == "" && e.Serial == "" {
				t.Fatal("entry without a way to find its device")
			}
			for _, fact := range e.Facts {
				if _, ok := identity.KindOf(fact.Name); !ok {
					t.Fatalf("accepted fact %q", fact.Name)
				}
			}
		}
	})
}

// FuzzVendorClaims: a vendor assertion's payload is parsed before (iss)
// and after its signature is checked.
func FuzzVendorClaims(f *testing.F) {
	f.Add(`{"iss":"https://edr","sub":"d","exp":99999999999,"iat":1,"assessment":{"overall":80}}`)
	f.Add(`{"exp":1e400}`)
	f.Add(`{"exp":"soon","nbf":-1}`)
	v := Vendor{Name: "edr", Issuer: "https://edr", ScoreClaim: "assessment.overall", FactClaims: map[string]string{"firewall": "a.b"}}
	f.Fuzz(func(t *testing.T, payload string) {
		claims, err := decodeClaims([]byte(payload))
		if err != nil {
			return
		}
		at, exp, err := checkTimes(claims, at0)
		if err != nil {
			return
		}
		facts, err := v.facts(claims, at, exp)
		for _, fact := range facts {
			if !fact.Unknown && decodeFact(fact.Name, fact.Value) == nil {
				t.Fatalf("undecodable %s=%q", fact.Name, fact.Value)
			}
		}
		_ = err
	})
}

// Issue 16: the most trusted fresh source wins; unknown and expired facts
// never do.
func TestResolvePrecedence(t *testing.T) {
	now := at0
	r := Record{Facts: []Fact{
		{Name: "disk_encrypted", Value: "true", Source: SourceReport, At: now.Add(-1)},
		{Name: "disk_encrypted", Value: "false", Source: "mdm:jamf", At: now.Add(-2)},
		{Name: "firewall", Unknown: true, Source: "vendor:edr", At: now},
		{Name: "firewall", Value: "true", Source: SourceReport, At: now},
		{Name: "score", Value: "90", Source: "vendor:edr", At: now, Expires: now},
		{Name: "os", Value: "old", Source: SourceReport, At: now.Add(-2 * hour)},
	}}
	got := r.resolve(now, hour)
	p := got.posture
	if p.DiskEncrypted || !p.IsKnown("disk_encrypted") || !p.Firewall || p.IsKnown("score") || p.IsKnown("os") {
		t.Errorf("posture = %+v", p)
	}
	if !got.at.Equal(now.Add(-2)) || got.stale {
		t.Errorf("at %v stale %v", got.at, got.stale)
	}
}

// Issue 16: what the collectors read from OS tools.
func TestCollectParsers(t *testing.T) {
	id, ver := parseOSRelease([]byte("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n"))
	if id != "debian" || ver != "12" {
		t.Errorf("os-release: %q %q", id, ver)
	}
	for out, want := range map[string]any{
		"FileVault is On.": true, "FileVault is Off.": false, "Firewall is enabled. (State = 1)": true,
		"Firewall is disabled. (State = 0)": false, "screenLock delay is immediate": true, "screenLock is off": false,
		"something else": nil,
	} {
		if got := parseMacOnOff(out); got != want {
			t.Errorf("%q: %v, want %v", out, got, want)
		}
	}
	if s := parseIORegSerial(`    | "IOPlatformSerialNumber" = "C02ABC123"` + "\n"); s != "C02ABC123" {
		t.Errorf("ioreg serial %q", s)
	}
	if usableSerial("To Be Filled By O.E.M.") || !usableSerial("PF2ABCDE") {
		t.Error("serial placeholders")
	}
	if strings.Contains(Collect(t.Context()).Serial, "\n") {
		t.Error("serial with a newline")
	}
}

var at0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const hour = time.Hour
