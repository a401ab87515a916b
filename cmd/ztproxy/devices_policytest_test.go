package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Issue 16: `policy test` inputs carry a device with its inventory facts.
func TestPolicyTestDevice(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `
@id("own-encrypted-device") permit (principal is User, action, resource == Route::"finance")
when { context.device.enrolled && context.device.owner_matches && context.device.posture.disk_encrypted && context.device.posture_age_seconds < 3600 };
`)
	writeFile(t, filepath.Join(dir, "c.yaml"), `
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - {name: finance, host: app.example.com, path_prefix: /finance, upstream: "http://127.0.0.1:1", auth: public}
`)
	device := func(owner, posture, age string) string {
		return `{"principal":"User::alice","issuer":"https://idp","route":"finance","device":{"spiffe_id":"spiffe://corp/device/d1",` +
			`"enrolled":true,"owner":"` + owner + `","status":"active","posture":` + posture + age + `}}`
	}
	cases := []struct{ input, want, ids string }{
		{device("https://idp#alice", `{"os":"macos","disk_encrypted":true,"score":80}`, `,"posture_age_seconds":60`), "allow", "own-encrypted-device"},
		{device("https://idp#bob", `{"disk_encrypted":true}`, `,"posture_age_seconds":60`), "deny", "none"},
		{device("https://idp#alice", `{"disk_encrypted":null}`, `,"posture_age_seconds":60`), "deny", "none"},
		{device("https://idp#alice", `{"disk_encrypted":true}`, ``), "deny", "none"},
	}
	for _, c := range cases {
		in := filepath.Join(dir, "in.json")
		writeFile(t, in, c.input)
		code, out := runZtproxy(t, "policy", "test", "--config", filepath.Join(dir, "c.yaml"), "--input", in, "--expect", c.want)
		if code != 0 || !strings.Contains(out, "decision: "+c.want) || !strings.Contains(out, c.ids) {
			t.Errorf("%s: exit %d\n%s", c.input, code, out)
		}
	}
	writeFile(t, filepath.Join(dir, "in.json"), device("https://idp#alice", `{"colour":"red"}`, ``))
	if code, out := runZtproxy(t, "policy", "test", "--config", filepath.Join(dir, "c.yaml"), "--input", filepath.Join(dir, "in.json")); code != 1 || !strings.Contains(out, `"colour" is not a posture fact`) {
		t.Errorf("unknown posture fact: exit %d\n%s", code, out)
	}
}
