package authz

import (
	"github.com/cedar-policy/cedar-go/types"
)

// contextLeaf is one documented key of a context sub-record: how to compute
// its value, and how to append its inputs to a cache key (see cache.go).
// The key must determine the value exactly.
type contextLeaf struct {
	top, name types.String
	value     func(b *contextBuilder) types.Value
	key       func(b *contextBuilder, buf []byte) []byte
}

// contextSchema lists every context leaf, grouped by top-level key. It is
// the single definition of the policy context (DESIGN.md, "The policy
// context"); leafMask bits and usage.go refer to leaves by position in it.
var contextSchema = [...]contextLeaf{
	{"http", "method",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Method) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Method) }},
	{"http", "host",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Host) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Host) }},
	{"http", "path",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Path) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Path) }},
	{"http", "user_agent",
		func(b *contextBuilder) types.Value { return types.String(b.rc.UserAgent) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.UserAgent) }},

	{"network", "client_ip",
		func(b *contextBuilder) types.Value { return clientIP(b.rc.ClientIP) },
		func(b *contextBuilder, buf []byte) []byte { return appendIP(buf, clientIP(b.rc.ClientIP)) }},
	{"network", "trusted_proxy_hops",
		func(b *contextBuilder) types.Value { return types.Long(b.rc.TrustedProxyHops) },
		func(b *contextBuilder, buf []byte) []byte { return appendInt(buf, int64(b.rc.TrustedProxyHops)) }},

	{"identity", "issuer",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Principal.Issuer) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Principal.Issuer) }},
	{"identity", "sub",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Principal.Subject) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Principal.Subject) }},
	{"identity", "username",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Principal.Username) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Principal.Username) }},
	{"identity", "scopes",
		func(b *contextBuilder) types.Value { return stringSet(b.rc.Principal.Scopes) },
		func(b *contextBuilder, buf []byte) []byte { return appendStrings(buf, b.rc.Principal.Scopes) }},
	{"identity", keyEmail,
		func(b *contextBuilder) types.Value { return types.String(b.rc.Principal.Email) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Principal.Email) }},
	{"identity", keyEmailVerified,
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Principal.EmailVerified) },
		func(b *contextBuilder, buf []byte) []byte { return appendBool(buf, b.rc.Principal.EmailVerified) }},
	{"identity", keyGroups,
		func(b *contextBuilder) types.Value { return stringSet(b.rc.Principal.Groups) },
		func(b *contextBuilder, buf []byte) []byte { return appendStrings(buf, b.rc.Principal.Groups) }},
	{"identity", "claims",
		func(b *contextBuilder) types.Value { return stringRecord(b.rc.Principal.Claims) },
		func(b *contextBuilder, buf []byte) []byte { return appendStringMap(buf, b.rc.Principal.Claims) }},

	{"auth", "kind",
		func(b *contextBuilder) types.Value { return types.String(authKind(b.rc.Principal.AuthKind)) },
		func(b *contextBuilder, buf []byte) []byte {
			return appendString(buf, string(authKind(b.rc.Principal.AuthKind)))
		}},
	{"auth", "amr",
		func(b *contextBuilder) types.Value { return stringSet(b.rc.Principal.AMR) },
		func(b *contextBuilder, buf []byte) []byte { return appendStrings(buf, b.rc.Principal.AMR) }},
	{"auth", "acr",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Principal.ACR) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Principal.ACR) }},
	{"auth", "age_seconds",
		func(b *contextBuilder) types.Value { return types.Long(authAge(b.rc.Principal.AuthTime, b.now)) },
		func(b *contextBuilder, buf []byte) []byte {
			return appendInt(buf, authAge(b.rc.Principal.AuthTime, b.now))
		}},
	{"auth", "mfa",
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Principal.HasMFA()) },
		func(b *contextBuilder, buf []byte) []byte { return appendBool(buf, b.rc.Principal.HasMFA()) }},

	{"device", "present",
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Device.Present) },
		func(b *contextBuilder, buf []byte) []byte { return appendBool(buf, b.rc.Device.Present) }},
	{"device", "id",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Device.ID) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Device.ID) }},
	{"device", "spiffe_id",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Device.SPIFFEID) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Device.SPIFFEID) }},
	{"device", "fingerprint",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Device.Fingerprint) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Device.Fingerprint) }},
	{"device", "enrolled",
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Device.Enrolled) },
		func(b *contextBuilder, buf []byte) []byte { return appendBool(buf, b.rc.Device.Enrolled) }},
	{"device", "owner",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Device.Owner) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Device.Owner) }},
	{"device", "owner_matches",
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Device.OwnerMatches(&b.rc.Principal)) },
		func(b *contextBuilder, buf []byte) []byte {
			return appendBool(buf, b.rc.Device.OwnerMatches(&b.rc.Principal))
		}},
	{"device", "managed",
		func(b *contextBuilder) types.Value { return types.Boolean(b.rc.Device.Managed) },
		func(b *contextBuilder, buf []byte) []byte { return appendBool(buf, b.rc.Device.Managed) }},
	{"device", "status",
		func(b *contextBuilder) types.Value { return types.String(b.rc.Device.Status) },
		func(b *contextBuilder, buf []byte) []byte { return appendString(buf, b.rc.Device.Status) }},
	{"device", "posture",
		func(b *contextBuilder) types.Value { return postureRecord(&b.rc.Device.Posture) },
		func(b *contextBuilder, buf []byte) []byte { return appendPosture(buf, &b.rc.Device.Posture) }},
	{"device", "posture_age_seconds",
		func(b *contextBuilder) types.Value { return types.Long(authAge(b.rc.Device.PostureTime, b.now)) },
		func(b *contextBuilder, buf []byte) []byte {
			return appendInt(buf, authAge(b.rc.Device.PostureTime, b.now))
		}},

	{"risk", "score",
		func(b *contextBuilder) types.Value { return types.Long(b.rc.Risk.Score) },
		func(b *contextBuilder, buf []byte) []byte { return appendInt(buf, int64(b.rc.Risk.Score)) }},
	{"risk", "level",
		func(b *contextBuilder) types.Value { return types.String(riskLevel(b.rc.Risk.Level)) },
		func(b *contextBuilder, buf []byte) []byte {
			return appendString(buf, string(riskLevel(b.rc.Risk.Level)))
		}},
	{"risk", "reasons",
		func(b *contextBuilder) types.Value { return riskReasons(b.rc.Risk.Reasons) },
		func(b *contextBuilder, buf []byte) []byte { return appendRiskCodes(buf, b.rc.Risk.Reasons) }},

	{"time", "hour",
		func(b *contextBuilder) types.Value { return types.Long(b.local().Hour()) },
		func(b *contextBuilder, buf []byte) []byte { return appendInt(buf, int64(b.local().Hour())) }},
	{"time", "weekday",
		func(b *contextBuilder) types.Value { return weekdayNames[b.local().Weekday()] },
		func(b *contextBuilder, buf []byte) []byte { return appendInt(buf, int64(b.local().Weekday())) }},
	{"time", "unix",
		func(b *contextBuilder) types.Value { return types.Long(b.now.Unix()) },
		func(b *contextBuilder, buf []byte) []byte { return appendInt(buf, b.now.Unix()) }},
}
