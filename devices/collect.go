package devices

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"
)

// commandTimeout bounds each OS tool Collect runs.
const commandTimeout = 5 * time.Second

// Collect gathers posture facts from the running OS for `ztproxy device
// report`. A fact that cannot be read (an unsupported OS, a tool that is
// missing or needs privileges the CLI does not have) is reported as
// unknown (nil), never guessed.
func Collect(ctx context.Context) Report {
	r := Report{Facts: map[string]any{}}
	for name := range reportedFacts {
		r.Facts[name] = nil
	}
	collectOS(ctx, &r)
	return r
}

// run runs an OS tool with a timeout and returns its trimmed standard
// output and error together; ok is false when it could not run or
// failed.
func run(ctx context.Context, name string, args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

// parseOSRelease reads ID and VERSION_ID from os-release(5) content.
func parseOSRelease(data []byte) (id, version string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		value = strings.Trim(value, `"'`)
		switch key {
		case "ID":
			id = value
		case "VERSION_ID":
			version = value
		}
	}
	return id, version
}

// parseMacOnOff reads the answer of fdesetup status, socketfilterfw
// --getglobalstate and sysadminctl -screenLock status: nil when it says
// neither.
func parseMacOnOff(out string) any {
	lower := strings.ToLower(out)
	switch {
	case strings.Contains(lower, "filevault is on"), strings.Contains(lower, "firewall is enabled"),
		strings.Contains(lower, "screenlock delay is"):
		return true
	case strings.Contains(lower, "filevault is off"), strings.Contains(lower, "firewall is disabled"),
		strings.Contains(lower, "screenlock is off"):
		return false
	}
	return nil
}

// parseIORegSerial finds IOPlatformSerialNumber in ioreg output.
func parseIORegSerial(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if _, rest, ok := strings.Cut(line, `"IOPlatformSerialNumber" = "`); ok {
			serial, _, _ := strings.Cut(rest, `"`)
			return serial
		}
	}
	return ""
}

// parseBoolSetting reads "true"/"false" (gsettings, kreadconfig).
func parseBoolSetting(out string) any {
	switch strings.TrimSpace(out) {
	case "true":
		return true
	case "false":
		return false
	}
	return nil
}

// placeholderSerials are what firmware reports when it has no serial.
var placeholderSerials = []string{"", "0", "none", "default string", "to be filled by o.e.m.", "system serial number", "not specified", "not applicable"}

// usableSerial reports whether a firmware serial number identifies a
// machine.
func usableSerial(s string) bool {
	for _, p := range placeholderSerials {
		if strings.EqualFold(strings.TrimSpace(s), p) {
			return false
		}
	}
	return checkText(s) == nil
}

// setFact stores a collected fact; a nil value leaves it unknown.
func (r *Report) setFact(name string, value any) {
	if value != nil {
		r.Facts[name] = value
	}
}
