package authz

import (
	"encoding/binary"
	"net/netip"
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
	keyEmail         types.String = "email"
	keyEmailVerified types.String = "email_verified"
	keyGroups        types.String = "groups"
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
		"present":             types.False,
		"id":                  types.String(""),
		"spiffe_id":           types.String(""),
		"fingerprint":         types.String(""),
		"enrolled":            types.False,
		"owner":               types.String(""),
		"owner_matches":       types.False,
		"managed":             types.False,
		"status":              types.String(""),
		"posture":             unknownPosture,
		"posture_age_seconds": types.Long(unknownAuthAge),
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
	withAttrs bool                      // false when no policy can read the principal's attributes
	cache     *valueCache[types.Entity] // may be nil
	built     bool
	entity    types.Entity
}

// Get implements types.EntityGetter.
func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid != r.uid {
		return types.Entity{}, false
	}
	if !r.built {
		r.entity = r.build()
		r.built = true
	}
	return r.entity, true
}

// build returns the principal entity, from the cache if possible.
func (r *requestEntities) build() types.Entity {
	if r.cache == nil {
		return principalEntity(r.uid, r.principal, r.withAttrs)
	}
	key := make([]byte, 0, 128)
	key = appendString(key, string(r.uid.Type))
	key = appendString(key, string(r.uid.ID))
	key = appendBool(key, r.withAttrs)
	key = appendStrings(key, r.principal.Groups)
	if r.withAttrs {
		key = appendString(key, r.principal.Email)
		key = appendBool(key, r.principal.EmailVerified)
	}
	entity, slot, ok := r.cache.get(key)
	if !ok {
		entity = principalEntity(r.uid, r.principal, r.withAttrs)
		r.cache.put(slot, key, entity)
	}
	return entity
}

// principalEntity builds the principal entity: a Group::"<g>" parent for
// every group so that `principal in Group::"eng"` works, and, if withAttrs,
// the attributes email, email_verified and groups (email_verified sits next
// to email so a domain rule can require it in the same expression).
func principalEntity(uid types.EntityUID, p *identity.Principal, withAttrs bool) types.Entity {
	var parents types.EntityUIDSet
	if len(p.Groups) > 0 {
		uids := make([]types.EntityUID, len(p.Groups))
		for i, g := range p.Groups {
			uids[i] = types.NewEntityUID(typeGroup, types.String(g))
		}
		parents = types.NewEntityUIDSet(uids...)
	}
	entity := types.Entity{UID: uid, Parents: parents}
	if withAttrs {
		entity.Attributes = types.NewRecord(types.RecordMap{
			keyEmail:         types.String(p.Email),
			keyEmailVerified: types.Boolean(p.EmailVerified),
			keyGroups:        stringSet(p.Groups),
		})
	}
	return entity
}

// leafMask selects context leaves: bit i is contextSchema[i].
type leafMask uint64

// allLeaves selects every context leaf.
const allLeaves leafMask = 1<<len(contextSchema) - 1

// topGroup is one top-level context key: the schema leaves [from, to).
type topGroup struct {
	name     types.String
	from, to int
	mask     leafMask
}

// numTops is the number of top-level context keys in contextSchema.
const numTops = 7

// contextTops groups contextSchema by top-level key.
var contextTops = func() (groups [numTops]topGroup) {
	n := 0
	for i, l := range contextSchema {
		if n == 0 || groups[n-1].name != l.top {
			groups[n] = topGroup{name: l.top, from: i}
			n++
		}
		g := &groups[n-1]
		g.to = i + 1
		g.mask |= 1 << i
	}
	return groups
}()

// topMask selects every leaf of the top-level key top; 0 if there is none.
func topMask(top string) leafMask {
	var m leafMask
	for i, l := range contextSchema {
		if string(l.top) == top {
			m |= 1 << i
		}
	}
	return m
}

// leafBit selects the leaf top.name; 0 if there is none.
func leafBit(top, name string) leafMask {
	for i, l := range contextSchema {
		if string(l.top) == top && string(l.name) == name {
			return 1 << i
		}
	}
	return 0
}

// contextBuilder builds the context record of one request.
type contextBuilder struct {
	rc        *identity.RequestContext
	now       time.Time
	loc       *time.Location
	localTime time.Time
	localSet  bool
}

// local returns the request time in the configured zone, converted once.
func (b *contextBuilder) local() time.Time {
	if !b.localSet {
		b.localTime, b.localSet = b.now.In(b.loc), true
	}
	return b.localTime
}

// contextCaches remembers built context records: one cache per top-level
// key and one for whole context records.
type contextCaches struct {
	tops       []*recordCache // parallel to contextTops
	whole      *recordCache
	principals *valueCache[types.Entity]
}

func newContextCaches() *contextCaches {
	c := &contextCaches{
		tops:       make([]*recordCache, numTops),
		whole:      newRecordCache(),
		principals: newValueCache[types.Entity](),
	}
	for i := range c.tops {
		c.tops[i] = newRecordCache()
	}
	return c
}

// buildContext returns the context record of one request with the leaves
// in mask. With allLeaves every documented key is present, with an explicit
// default when the fact is unknown, so that a policy never fails on a
// missing attribute; a smaller mask leaves out only what the engine's
// policies cannot observe (see usage). now is the request time (the caller
// substitutes the engine clock when rc.Time is zero) and loc the zone of
// context.time. caches may be nil.
func buildContext(rc *identity.RequestContext, now time.Time, loc *time.Location, mask leafMask, caches *contextCaches) types.Record {
	if mask == 0 {
		return emptyRecord
	}
	b := contextBuilder{rc: rc, now: now, loc: loc}
	if caches == nil {
		return b.build(mask, nil, nil)
	}
	// The key of each sub-record is its leaf mask and the inputs of its
	// leaves; the key of the whole record is the concatenation of those.
	var ends [numTops]int
	key := make([]byte, 0, 256)
	for gi, g := range contextTops {
		if mask&g.mask != 0 {
			key = binary.AppendUvarint(key, uint64(mask&g.mask))
			for i := g.from; i < g.to; i++ {
				if mask&(1<<i) != 0 {
					key = contextSchema[i].key(&b, key)
				}
			}
		}
		ends[gi] = len(key)
	}
	if rec, _, ok := caches.whole.get(key); ok {
		return rec
	}
	rec := b.build(mask, caches, func(gi int) []byte {
		start := 0
		if gi > 0 {
			start = ends[gi-1]
		}
		return key[start:ends[gi]]
	})
	_, slot, _ := caches.whole.get(key)
	caches.whole.put(slot, key, rec)
	return rec
}

// build builds the context record; with caches, keyOf(i) is the cache key
// of contextTops[i].
func (b *contextBuilder) build(mask leafMask, caches *contextCaches, keyOf func(int) []byte) types.Record {
	// NewRecord copies its map, so one scratch map serves every sub-record.
	scratch := make(types.RecordMap, 8)
	top := make(types.RecordMap, len(contextTops))
	for gi, g := range contextTops {
		if mask&g.mask == 0 {
			continue
		}
		if caches == nil {
			top[g.name] = b.subRecord(scratch, g, mask)
			continue
		}
		key := keyOf(gi)
		rec, slot, ok := caches.tops[gi].get(key)
		if !ok {
			rec = b.subRecord(scratch, g, mask)
			caches.tops[gi].put(slot, key, rec)
		}
		top[g.name] = rec
	}
	return types.NewRecord(top)
}

// subRecord builds the sub-record g with the leaves selected by mask.
func (b *contextBuilder) subRecord(scratch types.RecordMap, g topGroup, mask leafMask) types.Record {
	if mask&g.mask == g.mask {
		switch g.name {
		case "device":
			if isAbsentDevice(&b.rc.Device) {
				return absentDevice
			}
		case "risk":
			if isNeutralRisk(&b.rc.Risk) {
				return neutralRisk
			}
		}
	}
	clear(scratch)
	for i := g.from; i < g.to; i++ {
		if mask&(1<<i) != 0 {
			scratch[contextSchema[i].name] = contextSchema[i].value(b)
		}
	}
	return types.NewRecord(scratch)
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

// isAbsentDevice reports whether d is the zero Device apart from lists
// that are not part of the context.
func isAbsentDevice(d *identity.Device) bool {
	return !d.Present && d.ID == "" && d.SPIFFEID == "" && d.Fingerprint == "" && !d.Managed &&
		!d.Enrolled && d.Owner == "" && d.Status == "" && d.Posture == (identity.Posture{}) && d.PostureTime.IsZero()
}

// isNeutralRisk reports whether r has the value of neutralRisk.
func isNeutralRisk(r *identity.Risk) bool {
	return r.Score == 0 && riskLevel(r.Level) == identity.RiskLow && len(r.Reasons) == 0
}

// riskLevel returns the risk.level value. An empty level is reported as
// "low", the level of identity.NeutralRisk, so that policies compare against
// the three documented levels only.
func riskLevel(l identity.RiskLevel) identity.RiskLevel {
	if l == "" {
		return identity.RiskLow
	}
	return l
}

// riskReasons returns the set of reason codes.
func riskReasons(reasons []identity.RiskReason) types.Set {
	if len(reasons) == 0 {
		return emptySet
	}
	codes := make([]types.Value, len(reasons))
	for i, r := range reasons {
		codes[i] = types.String(r.Code)
	}
	return types.NewSet(codes...)
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

// actionUID returns Action::"<METHOD>". Decide accepts only canonical
// (upper-case) methods, so this is the same string as
// context.http.method.
func actionUID(method string) types.EntityUID {
	return types.NewEntityUID(typeAction, types.String(method))
}
