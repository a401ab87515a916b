package devices

import (
	"context"

	"ztproxy/identity"
)

// collectOS reads macOS facts with the system's own tools: sw_vers,
// uname, fdesetup (FileVault), socketfilterfw (application firewall),
// sysadminctl (screen lock) and ioreg (serial number).
func collectOS(ctx context.Context, r *Report) {
	r.setFact(identity.FactOS, "macos")
	if out, ok := run(ctx, "sw_vers", "-productVersion"); ok && out != "" {
		r.setFact(identity.FactOSVersion, out)
	}
	if out, ok := run(ctx, "uname", "-r"); ok && out != "" {
		r.setFact(identity.FactKernel, out)
	}
	if out, ok := run(ctx, "fdesetup", "status"); ok {
		r.setFact(identity.FactDiskEncrypted, parseMacOnOff(out))
	}
	if out, ok := run(ctx, "/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate"); ok {
		r.setFact(identity.FactFirewall, parseMacOnOff(out))
	}
	if out, _ := run(ctx, "sysadminctl", "-screenLock", "status"); out != "" {
		r.setFact(identity.FactScreenLock, parseMacOnOff(out))
	}
	if out, ok := run(ctx, "ioreg", "-c", "IOPlatformExpertDevice", "-d", "2"); ok {
		if s := parseIORegSerial(out); usableSerial(s) {
			r.Serial = s
		}
	}
}
