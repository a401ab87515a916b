package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// Issue 16: real headless Chromium presents the enrolled device's
// certificate (PKCS#12 from `ztproxy device export`, imported into NSS,
// auto-selected by Chromium's managed policy) on a browser route whose
// policy needs the signed-in user's own enrolled, encrypted device; the
// same sign-in without the certificate is refused.
func TestDeviceChromiumE2E(t *testing.T) {
	e := newDeviceEnv(t, deviceEnvOptions{})
	browser := e.browserEnv.client(t)
	e.op.Login(t, browser, e.base+"/", e.op.User(t, "alice"), true)
	devDir := filepath.Join(e.dir, "dev")
	e.enroll(t, browser, "alice", devDir)
	if code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--fact", "disk_encrypted=true"); code != 0 {
		t.Fatalf("report: %d %s", code, out)
	}
	p12 := filepath.Join(devDir, "device.p12")
	if code, out := runZtproxy(t, "device", "export", "--dir", devDir, "--p12", p12, "--password", "chromium-pw"); code != 0 {
		t.Fatalf("export: %d %s", code, out)
	}
	alice := e.op.User(t, "alice")
	var tab *testenv.Tab
	open := func(br *testenv.Browser) string {
		tab = br.NewTab(t)
		tab.Navigate(t, e.base+"/finance/from-chromium")
		tab.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 15*time.Second)
		tab.LoginForm(t, alice.Sub, alice.Password, "")
		tab.WaitURLPrefix(t, e.base+"/finance/from-chromium", 15*time.Second)
		return tab.Text(t)
	}
	withCert := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true,
		ClientCertificate: &testenv.ClientCertificate{P12File: p12, Password: "chromium-pw", URLPattern: e.base}})
	if got := open(withCert); got != "app says hello to alice@ztp.test on /finance/from-chromium" {
		t.Errorf("Chromium with the device certificate: %q", got)
	}
	// The devices page shows this device, its posture and a way to remove it.
	tab.Navigate(t, e.base+"/.ztp/devices")
	page := tab.Text(t)
	for _, want := range []string{"Your devices", "test laptop (this device)", "Enrolled to you.", "disk_encrypted = true", "Remove this device"} {
		if !strings.Contains(page, want) {
			t.Errorf("devices page lacks %q:\n%s", want, page)
		}
	}
	without := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	if got := open(without); !strings.Contains(got, "Access denied") {
		t.Errorf("Chromium without the device certificate: %q", got)
	}
}
