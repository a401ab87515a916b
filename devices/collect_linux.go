package devices

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ztproxy/identity"
)

// collectOS reads Linux facts: os-release, the kernel release, whether
// the root file system sits on dm-crypt, firewall and screen lock where a
// common tool says, and the DMI serial when readable (root).
func collectOS(ctx context.Context, r *Report) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err := os.ReadFile(p); err == nil {
			id, version := parseOSRelease(data)
			if id != "" {
				r.setFact(identity.FactOS, id)
			}
			if version != "" {
				r.setFact(identity.FactOSVersion, version)
			}
			break
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		if k := strings.TrimSpace(string(data)); k != "" {
			r.setFact(identity.FactKernel, k)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		r.setFact(identity.FactDiskEncrypted, rootEncrypted(mi, "/sys"))
	}
	r.setFact(identity.FactFirewall, linuxFirewall(ctx))
	r.setFact(identity.FactScreenLock, gnomeScreenLock(ctx, os.Getenv("XDG_CURRENT_DESKTOP")))
	if data, err := os.ReadFile("/sys/class/dmi/id/product_serial"); err == nil && usableSerial(string(data)) {
		r.Serial = strings.TrimSpace(string(data))
	}
}

// gnomeScreenLock reads GNOME's settings in a GNOME session: the screen
// locks when lock-enabled is true and the session goes idle (idle-delay
// above 0). Outside a GNOME session (a server, another desktop) gsettings
// would only print the schema defaults, so the answer is unknown (nil).
func gnomeScreenLock(ctx context.Context, desktop string) any {
	if !strings.Contains(strings.ToUpper(desktop), "GNOME") {
		return nil
	}
	lock, ok := run(ctx, "gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled")
	if !ok {
		return nil
	}
	enabled := parseBoolSetting(lock)
	if enabled != true {
		return enabled
	}
	idle, ok := run(ctx, "gsettings", "get", "org.gnome.desktop.session", "idle-delay")
	if !ok {
		return nil
	}
	return parseIdleDelay(idle)
}

// parseIdleDelay reads gsettings' "uint32 300": true when the session
// goes idle at all, nil when unreadable.
func parseIdleDelay(out string) any {
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "uint32")))
	if err != nil {
		return nil
	}
	return n > 0
}

// rootEncrypted reports whether the block device under "/" is (or sits
// on) a dm-crypt mapping: true, false, or nil when the root is not on a
// block device ztproxy can follow (overlay, network, ZFS).
func rootEncrypted(mountinfo []byte, sysfs string) any {
	source := rootMountSource(string(mountinfo))
	if !strings.HasPrefix(source, "/dev/") {
		return nil
	}
	var st syscallStat
	if err := statRdev(source, &st); err != nil {
		return nil
	}
	return dmCrypt(filepath.Join(sysfs, "dev", "block", fmt.Sprintf("%d:%d", st.major, st.minor)), 0)
}

// rootMountSource returns the mount source of "/" from mountinfo(5).
func rootMountSource(mountinfo string) string {
	source := ""
	for line := range strings.SplitSeq(mountinfo, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 10 || fields[4] != "/" {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+2 < len(fields) {
				source = fields[i+2] // the last "/" mount is the one in effect
			}
		}
	}
	return source
}

// dmCrypt follows a block device down its device-mapper slaves: true when
// one of them is a dm-crypt target (dm/uuid "CRYPT-…"), false when none
// is, nil when sysfs cannot be read.
func dmCrypt(dir string, depth int) any {
	if depth > 8 {
		return nil
	}
	if uuid, err := os.ReadFile(filepath.Join(dir, "dm", "uuid")); err == nil && strings.HasPrefix(string(uuid), "CRYPT-") {
		return true
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		if v := dmCrypt(filepath.Join(dir, "slaves", s.Name()), depth+1); v != false {
			return v
		}
	}
	return false
}

// linuxFirewall asks ufw's configuration, firewalld and, as root,
// nftables. It says true when one filters inbound traffic, false only when
// the nftables rule set could be read and nothing filters, nil otherwise.
func linuxFirewall(ctx context.Context) any {
	if data, err := os.ReadFile("/etc/ufw/ufw.conf"); err == nil && strings.Contains(string(data), "ENABLED=yes") {
		return true
	}
	if out, ok := run(ctx, "firewall-cmd", "--state"); ok && out == "running" {
		return true
	}
	if out, ok := run(ctx, "nft", "list", "ruleset"); ok {
		return nftFiltersInput(out)
	}
	return nil
}

// nftFiltersInput reports whether an nft ruleset has an input hook whose
// policy drops by default.
func nftFiltersInput(ruleset string) bool {
	for line := range strings.SplitSeq(ruleset, "\n") {
		if strings.Contains(line, "hook input") && strings.Contains(line, "policy drop") {
			return true
		}
	}
	return false
}
