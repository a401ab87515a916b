package riskengine

import (
	"net/netip"
	"time"
)

// maxPendingKeys bounds each map of a pending aggregate between flushes, so
// a client hopping networks cannot grow memory without limit. Keys beyond
// it are simply not learned; the request is still scored and counted.
const maxPendingKeys = 64

// aggregate is a mergeable summary of a user's requests. The engine keeps
// three per user: the profile as last read from the store, what it has sent
// since that read, and what is still pending; scoring looks at all three.
type aggregate struct {
	networks   map[netip.Prefix]int64
	userAgents map[string]int64
	devices    map[string]int64
	// hours holds forward-decay weights; hourTotal is their sum.
	hours      hourWeights
	hourTotal  float64
	requests   int64
	failedAuth int64
	lastSeen   time.Time
	loc        location
	// email is the user's verified email address, kept so that operators
	// can name a user by it (ztproxy risk flag alice@example.com). It is
	// only written when it changes.
	email string
	// dirty is set by anything worth writing.
	dirty bool
}

// aggregateFromProfile converts a stored profile. Network keys that do not
// parse as prefixes are ignored.
func aggregateFromProfile(p Profile) aggregate {
	a := aggregate{
		userAgents: p.UserAgents, devices: p.Devices, hours: hourWeightsOf(&p.HourHistogram),
		requests: p.RequestCount, failedAuth: p.FailedAuth, lastSeen: p.LastSeen,
		loc: parseLocation(p.LastLocation), email: p.Email,
	}
	if len(p.Networks) > 0 {
		a.networks = make(map[netip.Prefix]int64, len(p.Networks))
		for k, seen := range p.Networks {
			if prefix, err := netip.ParsePrefix(k); err == nil {
				a.networks[prefix.Masked()] = seen
			}
		}
	}
	for _, w := range p.HourHistogram {
		a.hourTotal += w
	}
	return a
}

// known reports whether anything has been learned about the user.
func (a *aggregate) known() bool {
	return len(a.networks)+len(a.userAgents)+len(a.devices) > 0
}

// learn records the facts of one request whose risk was acceptable enough
// to teach the profile.
func (a *aggregate) learn(network netip.Prefix, hasNetwork bool, uaFamily, device string, hour int, weight float64, sec int64) {
	if hasNetwork {
		a.networks = setSeen(a.networks, network, sec)
	}
	a.userAgents = setSeen(a.userAgents, uaFamily, sec)
	if device != "" {
		a.devices = setSeen(a.devices, device, sec)
	}
	a.hours.add(hour, weight)
	a.hourTotal += weight
	a.dirty = true
}

// count records one request, learned or not.
func (a *aggregate) count(t time.Time, loc location) {
	a.requests++
	if t.After(a.lastSeen) {
		a.lastSeen = t
	}
	if loc.ok && (!a.loc.ok || !loc.at.Before(a.loc.at)) {
		a.loc = loc
	}
	a.dirty = true
}

func setSeen[K comparable](m map[K]int64, k K, sec int64) map[K]int64 {
	if m == nil {
		m = make(map[K]int64, 4)
	}
	if old, ok := m[k]; ok {
		if sec > old {
			m[k] = sec
		}
		return m
	}
	if len(m) < maxPendingKeys {
		m[k] = sec
	}
	return m
}

// merge adds b into a, as the store merges an observation.
func (a *aggregate) merge(b *aggregate) {
	for k, v := range b.networks {
		a.networks = setSeen(a.networks, k, v)
	}
	for k, v := range b.userAgents {
		a.userAgents = setSeen(a.userAgents, k, v)
	}
	for k, v := range b.devices {
		a.devices = setSeen(a.devices, k, v)
	}
	b.hours.addTo(&a.hours)
	a.hourTotal += b.hourTotal
	a.requests += b.requests
	a.failedAuth += b.failedAuth
	if b.lastSeen.After(a.lastSeen) {
		a.lastSeen = b.lastSeen
	}
	if b.loc.ok && (!a.loc.ok || !b.loc.at.Before(a.loc.at)) {
		a.loc = b.loc
	}
	if b.email != "" {
		a.email = b.email
	}
	a.dirty = a.dirty || b.dirty
}

// observation converts a pending aggregate into the store's shape.
func (a *aggregate) observation(userID string) Observation {
	obs := Observation{
		UserID: userID, UserAgents: a.userAgents, Devices: a.devices, HourCounts: a.hours.array(),
		Requests: a.requests, FailedAuth: a.failedAuth, LastSeen: a.lastSeen, LastLocation: encodeLocation(a.loc),
		Email: a.email,
	}
	if len(a.networks) > 0 {
		obs.Networks = make(map[string]int64, len(a.networks))
		for k, seen := range a.networks {
			obs.Networks[k.String()] = seen
		}
	}
	return obs
}

// view is the three aggregates of a user read together.
type view [3]*aggregate

func (v view) known() bool {
	return v[0].known() || v[1].known() || v[2].known()
}

func (v view) networkSeen(k netip.Prefix) int64 {
	return max(v[0].networks[k], v[1].networks[k], v[2].networks[k])
}

func (v view) userAgentSeen(k string) int64 {
	return max(v[0].userAgents[k], v[1].userAgents[k], v[2].userAgents[k])
}

func (v view) deviceSeen(k string) int64 {
	return max(v[0].devices[k], v[1].devices[k], v[2].devices[k])
}

func (v view) requests() int64 { return v[0].requests + v[1].requests + v[2].requests }

// email is the latest email address known: pending, then sent, then stored.
func (v view) email() string {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i].email != "" {
			return v[i].email
		}
	}
	return ""
}

// hourShare is the fraction of the decayed hour weight in bucket h. Both
// sides carry the same forward-decay factor, so it cancels.
func (v view) hourShare(h int) (share float64, ok bool) {
	total := v[0].hourTotal + v[1].hourTotal + v[2].hourTotal
	if total <= 0 {
		return 0, false
	}
	return (v[0].hours.get(h) + v[1].hours.get(h) + v[2].hours.get(h)) / total, true
}

func (v view) lastLocation() location {
	last := v[0].loc
	for _, a := range v[1:] {
		if a.loc.ok && (!last.ok || a.loc.at.After(last.at)) {
			last = a.loc
		}
	}
	return last
}
