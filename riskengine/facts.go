package riskengine

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ztproxy/identity"
)

// maxKeyLen bounds profile map keys; the store turns them into attribute
// names and rejects longer ones.
const maxKeyLen = 200

// maxDecayExponent caps the forward-decay exponent so that stored weights
// stay below DynamoDB's largest number (1e125, about 2^415) with room for
// 2^35 requests per bucket at the cap. Past the cap new requests weigh the
// same as old ones: the histogram stops decaying instead of overflowing.
const maxDecayExponent = 380

// networkOf returns the /24 (IPv4) or /48 (IPv6) containing ip, or false
// for an invalid address.
func networkOf(ip netip.Addr) (netip.Prefix, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// deviceKey names the device in the profile: its stable id when it has one
// (it survives certificate renewal), else the certificate fingerprint.
// Over-long ids are hashed to fit the store's key limit.
func deviceKey(d *identity.Device) string {
	if !d.Present {
		return ""
	}
	key := d.ID
	if key == "" {
		key = d.Fingerprint
	}
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return key
}

// deviceSignals scores what the device inventory said about the client
// certificate; nothing when no inventory checked it.
func deviceSignals(rc *identity.RequestContext) signalSet {
	d := &rc.Device
	if !d.Present || !d.Checked {
		return 0
	}
	switch {
	case !d.Enrolled:
		return signalSet(sigDeviceUnenrolled)
	case rc.Principal.Kind == identity.KindUser && !d.OwnerMatches(&rc.Principal):
		return signalSet(sigDeviceOtherOwner)
	case d.PostureStale || d.PostureTime.IsZero():
		return signalSet(sigDevicePostureStale)
	}
	return 0
}

// hourOfWeek is the histogram bucket of t in loc: 0 is Sunday 00:00.
func hourOfWeek(t time.Time, loc *time.Location) int {
	t = t.In(loc)
	return int(t.Weekday())*24 + t.Hour()
}

// decayScale is the forward-decay factor 2^((t-epoch)/halfLife). Adding
// one request as decayScale(t) and dividing a bucket by decayScale(now) on
// read gives the count with each request halved per half-life of age.
func decayScale(t, epoch time.Time, halfLife time.Duration) float64 {
	exp := float64(t.Sub(epoch)) / float64(halfLife)
	return math.Exp2(min(exp, maxDecayExponent))
}

// location is a geographic point with the time it was observed.
type location struct {
	lat, lon float64
	at       time.Time
	ok       bool
}

// encodeLocation stores a location with its own time ("lat,lon@unix"), as
// the store's LastLocation may outlive the request that set LastSeen.
func encodeLocation(l location) string {
	if !l.ok {
		return ""
	}
	return strconv.FormatFloat(l.lat, 'f', 4, 64) + "," + strconv.FormatFloat(l.lon, 'f', 4, 64) +
		"@" + strconv.FormatInt(l.at.Unix(), 10)
}

// parseLocation reverses encodeLocation; malformed values yield !ok.
func parseLocation(s string) location {
	coords, at, found := strings.Cut(s, "@")
	if !found {
		return location{}
	}
	latS, lonS, found := strings.Cut(coords, ",")
	lat, err1 := strconv.ParseFloat(latS, 64)
	lon, err2 := strconv.ParseFloat(lonS, 64)
	sec, err3 := strconv.ParseInt(at, 10, 64)
	if !found || err1 != nil || err2 != nil || err3 != nil || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return location{}
	}
	return location{lat: lat, lon: lon, at: time.Unix(sec, 0), ok: true}
}

// distanceKm is the great-circle distance between two points.
func distanceKm(a, b location) float64 {
	const earthRadiusKm = 6371
	rad := math.Pi / 180
	dLat := (b.lat - a.lat) * rad
	dLon := (b.lon - a.lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.lat*rad)*math.Cos(b.lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(1, h)))
}

// Impossible travel: faster than an airliner, over a distance larger than
// GeoIP databases' typical error for one city.
const (
	maxTravelKmh   = 1000
	minTravelKm    = 100
	travelMinHours = 1.0 / 60 // time deltas below a minute count as a minute
)

// impossibleTravel reports whether going from prev to cur is faster than
// maxTravelKmh.
func impossibleTravel(prev, cur location) bool {
	if !prev.ok || !cur.ok {
		return false
	}
	km := distanceKm(prev, cur)
	if km < minTravelKm {
		return false
	}
	hours := max(math.Abs(cur.at.Sub(prev.at).Hours()), travelMinHours)
	return km/hours > maxTravelKmh
}
