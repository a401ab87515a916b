package riskengine

import (
	"ztproxy/identity"
)

// Reason codes. They are stable: policies, dashboards and the audit log
// match on them.
const (
	ReasonNewUser          = "new_user"
	ReasonNewNetwork       = "new_network"
	ReasonNewUserAgent     = "new_user_agent"
	ReasonNewDevice        = "new_device"
	ReasonUnusualHour      = "unusual_hour"
	ReasonVelocity         = "velocity"
	ReasonFailedAuth       = "failed_auth"
	ReasonImpossibleTravel = "impossible_travel"
	ReasonFlagWatch        = "flag_watch"
	ReasonFlagCompromised  = "flag_compromised"
	ReasonRiskUnavailable  = "risk_unavailable"
	// Device inventory signals (issue 16): the client certificate's device
	// is enrolled to someone else, its posture is older than the
	// inventory's max age, or the certificate is not an enrolled device's.
	ReasonDeviceOtherOwner   = "device_other_owner"
	ReasonDevicePostureStale = "device_posture_stale"
	ReasonDeviceUnenrolled   = "device_unenrolled"
)

// signal is one bit of a signalSet.
type signal uint16

// The signals, in a fixed order that also breaks ties between equal points.
const (
	sigFlagCompromised signal = 1 << iota
	sigImpossibleTravel
	sigNewUser
	sigVelocity
	sigFailedAuth
	sigNewNetwork
	sigNewDevice
	sigFlagWatch
	sigNewUserAgent
	sigUnusualHour
	sigDeviceOtherOwner
	sigDevicePostureStale
	sigDeviceUnenrolled
	numSignals = iota
)

// signalSet is the set of signals that fired for one request.
type signalSet uint16

func (s signalSet) has(x signal) bool { return s&signalSet(x) != 0 }

// signalCodes maps each signal's bit index to its reason code.
var signalCodes = [numSignals]string{
	ReasonFlagCompromised, ReasonImpossibleTravel, ReasonNewUser, ReasonVelocity, ReasonFailedAuth,
	ReasonNewNetwork, ReasonNewDevice, ReasonFlagWatch, ReasonNewUserAgent, ReasonUnusualHour,
	ReasonDeviceOtherOwner, ReasonDevicePostureStale, ReasonDeviceUnenrolled,
}

// scorer turns a signal set into an explained Risk. It is pure, which is
// what the monotonicity property test relies on.
type scorer struct {
	points     [numSignals]int
	thresholds Thresholds
}

func newScorer(cfg Config) scorer {
	w := cfg.Weights
	return scorer{
		points: [numSignals]int{
			w.FlagCompromised, w.ImpossibleTravel, cfg.UnknownUserScore, w.Velocity, w.FailedAuth,
			w.NewNetwork, w.NewDevice, w.FlagWatch, w.NewUserAgent, w.UnusualHour,
			w.DeviceOtherOwner, w.DevicePostureStale, w.DeviceUnenrolled,
		},
		thresholds: cfg.Thresholds,
	}
}

// risk sums the points of the fired signals (capped at 100) and lists them
// as reasons, highest points first. Disabled signals (0 points) are left
// out.
func (sc *scorer) risk(s signalSet) identity.Risk {
	var r identity.Risk
	if s != 0 {
		r.Reasons = make([]identity.RiskReason, 0, 4)
	}
	for i := range numSignals {
		if !s.has(signal(1<<i)) || sc.points[i] <= 0 {
			continue
		}
		r.Score += sc.points[i]
		r.Reasons = insertReason(r.Reasons, identity.RiskReason{Code: signalCodes[i], Points: sc.points[i]})
	}
	r.Score = min(r.Score, 100)
	r.Level = sc.level(r.Score)
	if len(r.Reasons) == 0 {
		r.Reasons = nil
	}
	return r
}

func (sc *scorer) level(score int) identity.RiskLevel {
	switch {
	case score >= sc.thresholds.High:
		return identity.RiskHigh
	case score >= sc.thresholds.Medium:
		return identity.RiskMedium
	default:
		return identity.RiskLow
	}
}

// insertReason keeps reasons sorted by points, descending, and stable for
// equal points; sort.Slice would allocate on the hot path.
func insertReason(rs []identity.RiskReason, x identity.RiskReason) []identity.RiskReason {
	i := len(rs)
	for i > 0 && rs[i-1].Points < x.Points {
		i--
	}
	rs = append(rs, identity.RiskReason{})
	copy(rs[i+1:], rs[i:])
	rs[i] = x
	return rs
}

// levelRank orders levels so that "at least medium" can be checked.
func levelRank(l identity.RiskLevel) int {
	switch l {
	case identity.RiskHigh:
		return 2
	case identity.RiskMedium:
		return 1
	default:
		return 0
	}
}

// unavailable turns a partial or missing assessment into the configured
// failure answer. base is the risk computed from cached data, or nil when
// there is none. The reason "risk_unavailable" carries the points that
// lift the score to the mode's threshold, so reasons still add up.
func (sc *scorer) unavailable(mode OnStoreError, base *identity.Risk) identity.Risk {
	var r identity.Risk
	if base != nil {
		r = *base
		r.Reasons = append([]identity.RiskReason(nil), base.Reasons...)
	}
	floor := sc.thresholds.Medium
	switch {
	case mode == StoreErrorDeny:
		floor = sc.thresholds.High
	case mode == StoreErrorAllowCached && base != nil:
		floor = 0
	}
	lift := max(0, floor-r.Score)
	r.Score += lift
	r.Reasons = insertReason(r.Reasons, identity.RiskReason{Code: ReasonRiskUnavailable, Points: lift})
	r.Level = sc.level(r.Score)
	return r
}
