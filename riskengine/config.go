package riskengine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Weights are the points each signal adds to the score. A zero field takes
// the default weight; a negative field disables the signal.
type Weights struct {
	NewNetwork, NewUserAgent, NewDevice, UnusualHour, Velocity, FailedAuth, ImpossibleTravel, FlagWatch, FlagCompromised int
	// DeviceOtherOwner, DevicePostureStale and DeviceUnenrolled score what
	// the device inventory says about the request's client certificate.
	DeviceOtherOwner, DevicePostureStale, DeviceUnenrolled int
}

// DefaultWeights are used for every zero field of Config.Weights. They are
// the one source of the defaults: config.DefaultRisk takes them, and
// config.example.yaml and docs/risk.md show them (TestRiskDefaultsAgree
// in config). Weak signals (a new browser, an unusual hour) stay low
// alone and together; with a new network they reach medium. A watch flag
// alone reaches medium, so policies that step up medium risk step up a
// watched user.
var DefaultWeights = Weights{
	NewNetwork: 25, NewUserAgent: 10, NewDevice: 20, UnusualHour: 10, Velocity: 30,
	FailedAuth: 30, ImpossibleTravel: 60, FlagWatch: 40, FlagCompromised: 100,
	DeviceOtherOwner: 40, DevicePostureStale: 15, DeviceUnenrolled: 10,
}

// DefaultThresholds and the other Default values below fill the zero
// fields of Config, like DefaultWeights.
var DefaultThresholds = Thresholds{Medium: 30, High: 70}

// Defaults of Config's scalar fields.
const (
	DefaultUnknownUserScore = 40
	DefaultProfileTTL       = 60 * time.Second
	DefaultFlagTTL          = 30 * time.Second
	DefaultFlushInterval    = 10 * time.Second
	DefaultNetworkWindow    = 30 * 24 * time.Hour
	DefaultHourHalfLife     = 14 * 24 * time.Hour
	DefaultOnStoreError     = StoreErrorStepUp
	DefaultIdleEvict        = 15 * time.Minute
	DefaultMaxUsers         = 20000
)

// Thresholds map a score to a level: score >= Medium is medium, score >=
// High is high. Zero fields take the defaults 30 and 70.
type Thresholds struct {
	Medium, High int
}

// OnStoreError says what Score returns when the store cannot be read and
// nothing usable is cached. Score always also returns the error.
type OnStoreError string

// Store failure modes.
const (
	// StoreErrorStepUp scores the request medium with reason
	// "risk_unavailable", so policies that step up at medium do.
	StoreErrorStepUp OnStoreError = "step_up"
	// StoreErrorDeny scores the request high with reason "risk_unavailable".
	StoreErrorDeny OnStoreError = "deny"
	// StoreErrorAllowCached scores with the last cached profile and flag
	// when there are any (after Invalidate), else behaves like step_up.
	StoreErrorAllowCached OnStoreError = "allow_cached"
)

// DefaultHourEpoch is the forward-decay epoch of the hour histogram. Stored
// weights grow by 2^((t-epoch)/HourHalfLife): with the default 14-day
// half-life that is 2^26 a year, which would reach DynamoDB's number limit
// (1e125, about 2^415) around 2042 and float64's (2^1024) around 2065. The
// engine caps the exponent at 380 half-lives (about 14.5 years after the
// epoch with the default half-life), after which the histogram stops
// decaying instead of overflowing. Shorter half-lives reach the cap
// proportionally sooner (a 1-day half-life in about a year). Changing the
// epoch of a deployed system skews every stored histogram until old weight
// has decayed.
var DefaultHourEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	Weights    Weights
	Thresholds Thresholds
	// UnknownUserScore is the score of a user the engine knows nothing
	// about yet (reason "new_user"); default 40.
	UnknownUserScore int
	// ProfileTTL is how long a cached profile is served before a
	// background refresh; default 60s.
	ProfileTTL time.Duration
	// FlagTTL is how long a cached operator flag is served before a
	// background refresh; default 30s.
	FlagTTL time.Duration
	// FlushInterval is how often pending observations are written, one
	// ApplyObservation per user; default 10s.
	FlushInterval time.Duration
	// NetworkWindow is how long a seen network (or user agent, or device)
	// stays known; default 30 days.
	NetworkWindow time.Duration
	// HourHalfLife is the decay half-life of the hour-of-week histogram;
	// default 14 days.
	HourHalfLife time.Duration
	// HourEpoch is the forward-decay epoch; default DefaultHourEpoch. It
	// MUST NOT change once profiles have been written.
	HourEpoch time.Time
	// UnusualHourFraction flags an hour bucket whose weight is below this
	// fraction of the average bucket weight; default 0.25.
	UnusualHourFraction float64
	// MinHistory is the request count a profile needs before unusual_hour
	// is judged; default 50.
	MinHistory int64
	// VelocityFactor flags a minute with more requests than VelocityFactor
	// times the user's average requests per active minute; default 5. The
	// norm and the minute's count are kept in memory per replica, so behind
	// a load balancer each replica judges its share of the traffic.
	VelocityFactor float64
	// VelocityFloor is the least requests per minute that count as
	// velocity whatever the user's norm; default 60.
	VelocityFloor int
	// FailedAuthWindow and FailedAuthThreshold define a failed-auth burst:
	// at least Threshold failures within Window; defaults 5m and 5.
	FailedAuthWindow    time.Duration
	FailedAuthThreshold int
	// LearnMaxAuthAge bounds how fresh an MFA authentication must be for a
	// medium-risk request to teach the profile its network, user agent,
	// device and hour; default 15m. Low-risk requests always teach it, high
	// ones never do.
	LearnMaxAuthAge time.Duration
	// StoreTimeout bounds each store call the engine makes; default 2s.
	StoreTimeout time.Duration
	// IdleEvict drops a user's in-memory state after this long without
	// requests; default 15m. State with something still to write is
	// written first (see MaxUsers).
	IdleEvict time.Duration
	// MaxUsers bounds the users whose state is cached; default
	// DefaultMaxUsers. Beyond it the least recently used user is evicted:
	// with nothing to write it is forgotten, otherwise it is compacted to
	// its pending observations, which the next flush writes before it is
	// forgotten. Eviction never waits for the store.
	MaxUsers int
	// Location is the zone of the hour-of-week buckets; default UTC.
	Location     *time.Location
	OnStoreError OnStoreError
	Store        Store
	// GeoIP enables impossible_travel; nil disables it.
	GeoIP  GeoLookup
	Now    func() time.Time
	Logger *slog.Logger
	// OnStoreCall, if set, is called after every store call with the
	// operation ("get_profile", "get_flag", "apply_observation").
	OnStoreCall func(op string, d time.Duration, err error)
	// OnCache, if set, is called once per Score: hit is false when the
	// request had to wait for a store read.
	OnCache func(hit bool)
}

// withDefaults returns a copy of c with defaults filled in, or every problem
// found. It has no side effects.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Store == nil {
		bad("store is required")
	}
	c.Weights = c.Weights.withDefaults()
	setInt(&c.Thresholds.Medium, DefaultThresholds.Medium)
	setInt(&c.Thresholds.High, DefaultThresholds.High)
	if c.Thresholds.Medium < 1 || c.Thresholds.Medium >= c.Thresholds.High || c.Thresholds.High > 100 {
		bad("thresholds: need 0 < medium < high <= 100, got medium %d high %d", c.Thresholds.Medium, c.Thresholds.High)
	}
	setInt(&c.UnknownUserScore, DefaultUnknownUserScore)
	if c.UnknownUserScore < 0 || c.UnknownUserScore > 100 {
		bad("unknown_user_score: must be 0 to 100, got %d", c.UnknownUserScore)
	}
	errs = append(errs, c.setDurations()...)
	if c.HourHalfLife < time.Hour {
		bad("hour_half_life: must be at least 1h, got %s", c.HourHalfLife)
	}
	if c.HourEpoch.IsZero() {
		c.HourEpoch = DefaultHourEpoch
	}
	setFloat(&c.UnusualHourFraction, 0.25)
	setFloat(&c.VelocityFactor, 5)
	if c.UnusualHourFraction < 0 || c.VelocityFactor < 0 {
		bad("unusual_hour_fraction and velocity_factor must not be negative")
	}
	if c.MinHistory == 0 {
		c.MinHistory = 50
	}
	setInt(&c.MaxUsers, DefaultMaxUsers)
	if c.MaxUsers < userShards {
		bad("max_users: must be at least %d, got %d", userShards, c.MaxUsers)
	}
	setInt(&c.VelocityFloor, 60)
	setInt(&c.FailedAuthThreshold, 5)
	if c.FailedAuthThreshold > maxFailedAuthThreshold {
		bad("failed_auth_threshold: must be at most %d, got %d", maxFailedAuthThreshold, c.FailedAuthThreshold)
	}
	if c.MinHistory < 0 || c.VelocityFloor < 0 || c.FailedAuthThreshold < 0 {
		bad("min_history, velocity_floor and failed_auth_threshold must not be negative")
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	switch c.OnStoreError {
	case "":
		c.OnStoreError = DefaultOnStoreError
	case StoreErrorStepUp, StoreErrorDeny, StoreErrorAllowCached:
	default:
		bad("on_store_error: must be step_up, deny or allow_cached, got %q", c.OnStoreError)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("riskengine: %w", err)
	}
	return c, nil
}

// setDurations fills in default durations and reports negative ones.
func (c *Config) setDurations() []error {
	var errs []error
	for _, d := range []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"profile_ttl", &c.ProfileTTL, DefaultProfileTTL},
		{"flag_ttl", &c.FlagTTL, DefaultFlagTTL},
		{"flush_interval", &c.FlushInterval, DefaultFlushInterval},
		{"network_window", &c.NetworkWindow, DefaultNetworkWindow},
		{"hour_half_life", &c.HourHalfLife, DefaultHourHalfLife},
		{"failed_auth_window", &c.FailedAuthWindow, 5 * time.Minute},
		{"learn_max_auth_age", &c.LearnMaxAuthAge, 15 * time.Minute},
		{"store_timeout", &c.StoreTimeout, 2 * time.Second},
		{"idle_evict", &c.IdleEvict, DefaultIdleEvict},
	} {
		if *d.p < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", d.name, *d.p))
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	return errs
}

func (w Weights) withDefaults() Weights {
	d := DefaultWeights
	for _, f := range []struct{ p, def *int }{
		{&w.NewNetwork, &d.NewNetwork}, {&w.NewUserAgent, &d.NewUserAgent}, {&w.NewDevice, &d.NewDevice},
		{&w.UnusualHour, &d.UnusualHour}, {&w.Velocity, &d.Velocity}, {&w.FailedAuth, &d.FailedAuth},
		{&w.ImpossibleTravel, &d.ImpossibleTravel}, {&w.FlagWatch, &d.FlagWatch}, {&w.FlagCompromised, &d.FlagCompromised},
		{&w.DeviceOtherOwner, &d.DeviceOtherOwner}, {&w.DevicePostureStale, &d.DevicePostureStale}, {&w.DeviceUnenrolled, &d.DeviceUnenrolled},
	} {
		switch {
		case *f.p == 0:
			*f.p = *f.def
		case *f.p < 0:
			*f.p = 0 // disabled: the signal never contributes
		}
	}
	return w
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setFloat(p *float64, def float64) {
	if *p == 0 {
		*p = def
	}
}
