package identity

// Posture fact names: the keys of context.device.posture, of posture
// reports and of the inventory.
const (
	FactOS            = "os"
	FactOSVersion     = "os_version"
	FactKernel        = "kernel"
	FactDiskEncrypted = "disk_encrypted"
	FactFirewall      = "firewall"
	FactScreenLock    = "screen_lock"
	FactScore         = "score"
)

// PostureFacts lists every fact name, in the order of the Known bits.
var PostureFacts = [...]string{FactOS, FactOSVersion, FactKernel, FactDiskEncrypted, FactFirewall, FactScreenLock, FactScore}

// FactKind is the type of a posture fact's value.
type FactKind int

// Fact kinds.
const (
	FactString FactKind = iota
	FactBool
	FactInt
)

// KindOf returns the kind of the fact name and whether it is a known
// fact.
func KindOf(name string) (FactKind, bool) {
	switch name {
	case FactOS, FactOSVersion, FactKernel:
		return FactString, true
	case FactDiskEncrypted, FactFirewall, FactScreenLock:
		return FactBool, true
	case FactScore:
		return FactInt, true
	}
	return 0, false
}

// Posture is what is known about a device's state. A fact that is not
// known has its zero value (false, "", 0) and its bit clear in Known, so
// a policy reading disk_encrypted sees false, never a guess.
type Posture struct {
	OS            string
	OSVersion     string
	Kernel        string
	DiskEncrypted bool
	Firewall      bool
	ScreenLock    bool
	// Score is a vendor's 0–100 assessment (higher is healthier).
	Score int
	// Known has bit i set when PostureFacts[i] is known.
	Known uint8
}

// IsKnown reports whether the fact name is known.
func (p *Posture) IsKnown(name string) bool {
	for i, n := range PostureFacts {
		if n == name {
			return p.Known&(1<<i) != 0
		}
	}
	return false
}

// Unknown returns the names of the facts that are not known, in
// PostureFacts order.
func (p *Posture) Unknown() []string {
	var out []string
	for i, n := range PostureFacts {
		if p.Known&(1<<i) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// Set records a known fact. value must be a string, bool or int as
// KindOf says; a fact of the wrong kind or an unknown name is ignored and
// Set returns false.
func (p *Posture) Set(name string, value any) bool {
	bit := -1
	for i, n := range PostureFacts {
		if n == name {
			bit = i
		}
	}
	if bit < 0 {
		return false
	}
	ok := true
	switch v := value.(type) {
	case string:
		switch name {
		case FactOS:
			p.OS = v
		case FactOSVersion:
			p.OSVersion = v
		case FactKernel:
			p.Kernel = v
		default:
			ok = false
		}
	case bool:
		switch name {
		case FactDiskEncrypted:
			p.DiskEncrypted = v
		case FactFirewall:
			p.Firewall = v
		case FactScreenLock:
			p.ScreenLock = v
		default:
			ok = false
		}
	case int:
		if name == FactScore {
			p.Score = v
		} else {
			ok = false
		}
	default:
		ok = false
	}
	if ok {
		p.Known |= 1 << bit
	}
	return ok
}
