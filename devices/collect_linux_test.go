package devices

import (
	"os"
	"path/filepath"
	"testing"
)

// Issue 16: what the Linux collector reads from mountinfo and nft.
func TestLinuxParsers(t *testing.T) {
	mi := "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/mapper/luks-1234 rw\n29 22 0:26 / /proc rw - proc proc rw\n"
	if src := rootMountSource(mi); src != "/dev/mapper/luks-1234" {
		t.Errorf("root source %q", src)
	}
	if gnomeScreenLock(t.Context(), "") != nil || gnomeScreenLock(t.Context(), "KDE") != nil {
		t.Error("screen lock outside a GNOME session must be unknown")
	}
	if parseIdleDelay("uint32 300") != true || parseIdleDelay("uint32 0") != false || parseIdleDelay("x") != nil {
		t.Error("idle-delay parsing")
	}
	if !nftFiltersInput("table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}") {
		t.Error("nft input drop not seen")
	}
}

// Issue 16: disk encryption is read from device-mapper: a root on LVM on
// LUKS is encrypted, a plain partition is not, an unreadable one unknown.
func TestDMCrypt(t *testing.T) {
	sys := t.TempDir()
	mk := func(path, uuid string) {
		if err := os.MkdirAll(filepath.Join(path, "dm"), 0o755); err != nil {
			t.Fatal(err)
		}
		if uuid != "" {
			os.WriteFile(filepath.Join(path, "dm", "uuid"), []byte(uuid+"\n"), 0o644)
		}
	}
	lvm := filepath.Join(sys, "253:1")
	mk(lvm, "LVM-abc")
	mk(filepath.Join(lvm, "slaves", "dm-0"), "CRYPT-LUKS2-1234-luks")
	if got := dmCrypt(lvm, 0); got != true {
		t.Errorf("LVM on LUKS: %v", got)
	}
	plain := filepath.Join(sys, "8:2")
	mk(plain, "")
	if got := dmCrypt(plain, 0); got != false {
		t.Errorf("plain partition: %v", got)
	}
	if got := dmCrypt(filepath.Join(sys, "missing"), 0); got != nil {
		t.Errorf("unreadable: %v", got)
	}
}
