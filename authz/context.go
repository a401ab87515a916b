package authz

import (
	"net/netip"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"ztproxy/identity"
)

// unknownAuthAge is the auth.age_seconds value used when the principal's
// auth_time is unknown. It is large enough that every "fresh
// authentication" check (age_seconds < N) fails.
const unknownAuthAge = 1 << 31

// Cedar entity types of the request's principal, action and resource.
const (
	typeUser      types.EntityType = "User"
	typeService   types.EntityType = "Service"
	typeAnonymous types.EntityType = "Anonymous"
	typeGroup     types.EntityType = "Group"
	typeAction    types.EntityType = "Action"
	typeRoute     types.EntityType = "Route"
)

// Record keys, pre-converted once so that building a context record does
// not convert strings on every request.
const (
	keyEmail  types.String = "email"
	keyGroups types.String = "groups"
)

// weekdayNames are the context.time.weekday values, indexed by time.Weekday.
// They are lower-case English day names.
var weekdayNames = [7]types.String{
	"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
}

// Values that many requests share are built once: Cedar records and sets
// hash their contents when they are created, which dominates the cost of a
// decision if it is repeated for every request.
var (
	emptySet    = types.NewSet()
	emptyRecord = types.NewRecord(nil)
	unknownIP   = types.IPAddr(netip.PrefixFrom(netip.IPv4Unspecified(), 32))

	// absentDevice is context.device for a request without a client
	// certificate.
	absentDevice = types.NewRecord(types.RecordMap{
		"present":     types.False,
		"id":          types.String(""),
		"spiffe_id":   types.String(""),
		"fingerprint": types.String(""),
		"managed":     types.False,
		"posture":     emptyRecord,
	})

	// neutralRisk is context.risk for a zero-score, low-level assessment
	// without reasons, the common case and the value without a risk engine.
	neutralRisk = types.NewRecord(types.RecordMap{
		"score":   types.Long(0),
		"level":   types.String(identity.RiskLow),
		"reasons": emptySet,
	})
)

// principalUID returns the Cedar entity of the request's principal:
// User::"<id>", Service::"<id>" or Anonymous::"anonymous".
func principalUID(p *identity.Principal) types.EntityUID {
	switch p.Kind {
	case identity.KindUser:
		return types.NewEntityUID(typeUser, types.String(p.ID))
	case identity.KindService:
		return types.NewEntityUID(typeService, types.String(p.ID))
	default:
		return types.NewEntityUID(typeAnonymous, "anonymous")
	}
}

// requestEntities is the entity store of one request. The only entity with
// attributes or parents is the principal (its groups become Group parents);
// it is built on first use because many requests are decided by policies
// that never look at it. Routes, actions and groups have no parents, which
// the policy index in index.go relies on.
type requestEntities struct {
	uid       types.EntityUID
	principal *identity.Principal
	built     bool
	entity    types.Entity
}

// Get implements types.EntityGetter.
func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid != r.uid {
		return types.Entity{}, false
	}
	if !r.built {
		r.entity = principalEntity(r.uid, r.principal)
		r.built = true
	}
	return r.entity, true
}

// principalEntity builds the principal entity: attributes email and groups,
// and a Group::"<g>" parent for every group so that `principal in
// Group::"eng"` works.
func principalEntity(uid types.EntityUID, p *identity.Principal) types.Entity {
	groups := emptySet
	var parents types.EntityUIDSet
	if len(p.Groups) > 0 {
		groups = stringSet(p.Groups)
		uids := make([]types.EntityUID, len(p.Groups))
		for i, g := range p.Groups {
			uids[i] = types.NewEntityUID(typeGroup, types.String(g))
		}
		parents = types.NewEntityUIDSet(uids...)
	}
	return types.Entity{
		UID:     uid,
		Parents: parents,
		Attributes: types.NewRecord(types.RecordMap{
			keyEmail:  types.String(p.Email),
			keyGroups: groups,
		}),
	}
}

// buildContext returns the context record of one request. Every key is
// always present, with an explicit default when the fact is unknown, so that
// a policy never fails on a missing attribute. now is the request time (the
// caller substitutes the engine clock when rc.Time is zero) and loc the zone
// of context.time.
func buildContext(rc *identity.RequestContext, now time.Time, loc *time.Location) types.Record {
	p := &rc.Principal
	return types.NewRecord(types.RecordMap{
		"http": types.NewRecord(types.RecordMap{
			"method":     types.String(rc.Method),
			"host":       types.String(rc.Host),
			"path":       types.String(rc.Path),
			"user_agent": types.String(rc.UserAgent),
		}),
		"network": types.NewRecord(types.RecordMap{
			"client_ip":          clientIP(rc.ClientIP),
			"trusted_proxy_hops": types.Long(rc.TrustedProxyHops),
		}),
		"identity": types.NewRecord(types.RecordMap{
			"issuer":         types.String(p.Issuer),
			"sub":            types.String(p.Subject),
			keyEmail:         types.String(p.Email),
			"email_verified": types.Boolean(p.EmailVerified),
			keyGroups:        stringSet(p.Groups),
			"claims":         stringRecord(p.Claims),
		}),
		"auth": types.NewRecord(types.RecordMap{
			"kind":        types.String(authKind(p.AuthKind)),
			"amr":         stringSet(p.AMR),
			"acr":         types.String(p.ACR),
			"age_seconds": types.Long(authAge(p.AuthTime, now)),
			"mfa":         types.Boolean(p.HasMFA()),
		}),
		"device": deviceRecord(&rc.Device),
		"risk":   riskRecord(&rc.Risk),
		"time":   timeRecord(now, loc),
	})
}

// clientIP converts the client address to a Cedar ipaddr value. IPv4-mapped
// IPv6 addresses are unmapped so that IPv4 ranges match them; an invalid
// (unknown) address becomes 0.0.0.0.
func clientIP(addr netip.Addr) types.IPAddr {
	if !addr.IsValid() {
		return unknownIP
	}
	addr = addr.Unmap().WithZone("")
	return types.IPAddr(netip.PrefixFrom(addr, addr.BitLen()))
}

// authKind returns the auth.kind value; an empty kind means nobody
// authenticated.
func authKind(k identity.AuthKind) identity.AuthKind {
	if k == "" {
		return identity.AuthNone
	}
	return k
}

// authAge returns whole seconds since the principal last authenticated,
// unknownAuthAge when that time is unknown, and 0 when it lies in the future
// (clock skew between the IdP and the proxy).
func authAge(authTime, now time.Time) int64 {
	if authTime.IsZero() {
		return unknownAuthAge
	}
	age := int64(now.Sub(authTime) / time.Second)
	if age < 0 {
		return 0
	}
	return age
}

// deviceRecord returns context.device.
func deviceRecord(d *identity.Device) types.Record {
	if !d.Present && d.ID == "" && d.SPIFFEID == "" && d.Fingerprint == "" && !d.Managed && len(d.Posture) == 0 {
		return absentDevice
	}
	return types.NewRecord(types.RecordMap{
		"present":     types.Boolean(d.Present),
		"id":          types.String(d.ID),
		"spiffe_id":   types.String(d.SPIFFEID),
		"fingerprint": types.String(d.Fingerprint),
		"managed":     types.Boolean(d.Managed),
		"posture":     stringRecord(d.Posture),
	})
}

// riskRecord returns context.risk. An empty level is reported as "low",
// the level of identity.NeutralRisk, so that policies compare against the
// three documented levels only.
func riskRecord(r *identity.Risk) types.Record {
	level := r.Level
	if level == "" {
		level = identity.RiskLow
	}
	if r.Score == 0 && level == identity.RiskLow && len(r.Reasons) == 0 {
		return neutralRisk
	}
	reasons := emptySet
	if len(r.Reasons) > 0 {
		codes := make([]types.Value, len(r.Reasons))
		for i, reason := range r.Reasons {
			codes[i] = types.String(reason.Code)
		}
		reasons = types.NewSet(codes...)
	}
	return types.NewRecord(types.RecordMap{
		"score":   types.Long(r.Score),
		"level":   types.String(level),
		"reasons": reasons,
	})
}

// timeRecord returns context.time: hour (0–23) and weekday (lower-case
// English name) in loc, and unix seconds.
func timeRecord(now time.Time, loc *time.Location) types.Record {
	local := now.In(loc)
	return types.NewRecord(types.RecordMap{
		"hour":    types.Long(local.Hour()),
		"weekday": weekdayNames[local.Weekday()],
		"unix":    types.Long(now.Unix()),
	})
}

// stringSet converts a string slice to a Cedar set of strings.
func stringSet(values []string) types.Set {
	if len(values) == 0 {
		return emptySet
	}
	set := make([]types.Value, len(values))
	for i, v := range values {
		set[i] = types.String(v)
	}
	return types.NewSet(set...)
}

// stringRecord converts a string map to a Cedar record of strings.
func stringRecord(values map[string]string) types.Record {
	if len(values) == 0 {
		return emptyRecord
	}
	m := make(types.RecordMap, len(values))
	for k, v := range values {
		m[types.String(k)] = types.String(v)
	}
	return types.NewRecord(m)
}

// actionUID returns Action::"<METHOD>" with the method in upper case.
func actionUID(method string) types.EntityUID {
	return types.NewEntityUID(typeAction, types.String(strings.ToUpper(method)))
}
