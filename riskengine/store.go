package riskengine

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound is what a Store returns for a user with no profile or no
// flag. The adapter over the real store maps its own not-found error to it.
var ErrNotFound = errors.New("riskengine: not found")

// Store is the persistence the engine needs. It mirrors the profile and flag
// halves of the shared store; the adapter lives in config.
type Store interface {
	// GetProfile returns ErrNotFound for a user never observed.
	GetProfile(ctx context.Context, userID string) (Profile, error)
	// ApplyObservation merges obs into the stored profile by addition, so
	// writes from several replicas commute. A batch sent again with the
	// same Writer and Batch after an error must not be counted twice.
	ApplyObservation(ctx context.Context, obs Observation) error
	// GetFlag returns ErrNotFound when no unexpired flag is set.
	GetFlag(ctx context.Context, userID string) (Flag, error)
}

// Profile is a user's stored behavioural profile. The map values are the
// unix second at which a key was last seen. Map keys are network prefixes
// ("192.0.2.0/24", "2001:db8:1::/48"), user-agent families ("chrome/macos")
// and device ids.
type Profile struct {
	UserID     string
	Networks   map[string]int64
	UserAgents map[string]int64
	Devices    map[string]int64
	// HourHistogram holds forward-decay weights per hour of week (0 = Sunday
	// 00:00 in the engine's Location); see Observation.HourCounts.
	HourHistogram [168]float64
	RequestCount  int64
	FailedAuth    int64
	LastSeen      time.Time
	// LastLocation is the engine's own encoding, "lat,lon@unix" (see
	// encodeLocation); the store keeps it opaque.
	LastLocation string
	Version      int64
	// Email is the user's verified email address as last seen, for
	// operators to look the user up by; "" when never seen.
	Email string
}

// Observation is what this replica learned about a user since its last
// flush. HourCounts are already scaled by the forward-decay factor
// 2^((t-epoch)/halfLife) of each request's time, so the store only adds.
type Observation struct {
	UserID                        string
	Networks, UserAgents, Devices map[string]int64
	HourCounts                    [168]float64
	Requests, FailedAuth          int64
	LastSeen                      time.Time
	LastLocation                  string
	// Writer (random per engine) and Batch (strictly increasing, at least
	// the unix milliseconds when the batch was made) let the store apply a
	// resent batch at most once; see store.Observation.
	Writer string
	Batch  int64
	// Email is set only when the user's verified email address changed
	// (or was first seen); "" keeps the stored one.
	Email string
}

// Flag levels an operator can set.
const (
	FlagCompromised = "compromised"
	FlagWatch       = "watch"
)

// Flag is an operator's mark on a user that raises the user's risk.
type Flag struct {
	UserID, Level, Reason, SetBy string
	SetAt                        time.Time
	// ExpiresAt is optional; a zero ExpiresAt means until cleared.
	ExpiresAt time.Time
}

// GeoLookup locates an IP address. ok is false when the address is not in
// the database (private ranges, unknown networks).
type GeoLookup interface {
	Lookup(ip netip.Addr) (lat, lon float64, ok bool)
}

// GeoLookupFunc adapts a function to GeoLookup.
type GeoLookupFunc func(ip netip.Addr) (lat, lon float64, ok bool)

// Lookup calls f.
func (f GeoLookupFunc) Lookup(ip netip.Addr) (lat, lon float64, ok bool) { return f(ip) }
