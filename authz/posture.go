package authz

import (
	"github.com/cedar-policy/cedar-go/types"

	"ztproxy/identity"
)

// unknownPosture is context.device.posture when nothing is known: every
// fact at its default and listed in unknown.
var unknownPosture = postureRecord(&identity.Posture{})

// postureRecord is context.device.posture: the typed facts, each at its
// default (false, "", 0) unless known, and the set of the names of the
// facts that are not known.
func postureRecord(p *identity.Posture) types.Record {
	return types.NewRecord(types.RecordMap{
		identity.FactOS:            types.String(p.OS),
		identity.FactOSVersion:     types.String(p.OSVersion),
		identity.FactKernel:        types.String(p.Kernel),
		identity.FactDiskEncrypted: types.Boolean(p.DiskEncrypted),
		identity.FactFirewall:      types.Boolean(p.Firewall),
		identity.FactScreenLock:    types.Boolean(p.ScreenLock),
		identity.FactScore:         types.Long(p.Score),
		"unknown":                  stringSet(p.Unknown()),
	})
}

// appendPosture appends the inputs of postureRecord to a cache key.
func appendPosture(buf []byte, p *identity.Posture) []byte {
	buf = appendString(buf, p.OS)
	buf = appendString(buf, p.OSVersion)
	buf = appendString(buf, p.Kernel)
	buf = appendBool(buf, p.DiskEncrypted)
	buf = appendBool(buf, p.Firewall)
	buf = appendBool(buf, p.ScreenLock)
	buf = appendInt(buf, int64(p.Score))
	return append(buf, p.Known)
}
