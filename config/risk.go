package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"ztproxy/riskengine"
	"ztproxy/store"
)

// RiskHooks receive the risk engine's store-call and cache observations
// (the caller turns them into metrics).
type RiskHooks struct {
	OnStoreCall func(op string, d time.Duration, err error)
	OnCache     func(hit bool)
	// Now replaces the clock (tests); nil means time.Now.
	Now func() time.Time
}

// NewRiskEngine builds the risk engine over the shared store, or returns
// nil when risk scoring is disabled. The engine must be closed (it flushes
// pending observations).
func NewRiskEngine(f *File, st store.Store, hooks RiskHooks, logger *slog.Logger) (*riskengine.Engine, error) {
	r := f.Risk
	if !r.Enabled {
		return nil, nil
	}
	w := r.Weights
	cfg := riskengine.Config{
		Weights: riskengine.Weights{
			NewNetwork: weight(w.NewNetwork), NewUserAgent: weight(w.NewUserAgent), NewDevice: weight(w.NewDevice),
			UnusualHour: weight(w.UnusualHour), Velocity: weight(w.Velocity), FailedAuth: weight(w.FailedAuth),
			ImpossibleTravel: weight(w.ImpossibleTravel), FlagWatch: weight(w.FlagWatch), FlagCompromised: weight(w.FlagCompromised),
			DeviceOtherOwner: weight(w.DeviceOtherOwner), DevicePostureStale: weight(w.DevicePostureStale),
			DeviceUnenrolled: weight(w.DeviceUnenrolled),
		},
		Thresholds:       riskengine.Thresholds{Medium: r.Thresholds.Medium, High: r.Thresholds.High},
		UnknownUserScore: r.UnknownUserScore,
		ProfileTTL:       r.ProfileTTL, FlagTTL: r.FlagTTL, FlushInterval: r.FlushInterval,
		NetworkWindow: r.NetworkWindow, HourHalfLife: r.HourHalfLife,
		MaxUsers: r.MaxUsers, IdleEvict: r.IdleEvict,
		Location: f.Location, OnStoreError: riskengine.OnStoreError(r.OnStoreError),
		Store: riskStore{st: st}, Logger: logger,
		OnStoreCall: hooks.OnStoreCall, OnCache: hooks.OnCache, Now: hooks.Now,
	}
	if r.GeoIPDatabase != "" {
		geo, err := openGeoIP(r.GeoIPDatabase)
		if err != nil {
			return nil, err
		}
		cfg.GeoIP = geo
	}
	return riskengine.New(cfg)
}

// weight maps the config's 0 ("signal off") to the engine's negative.
func weight(w int) int {
	if w == 0 {
		return -1
	}
	return w
}

// riskStore presents the shared store to the risk engine.
type riskStore struct{ st store.Store }

var _ riskengine.Store = riskStore{}

func (s riskStore) GetProfile(ctx context.Context, userID string) (riskengine.Profile, error) {
	p, err := s.st.GetProfile(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return riskengine.Profile{}, riskengine.ErrNotFound
	}
	if err != nil {
		return riskengine.Profile{}, err
	}
	return riskengine.Profile{
		UserID: p.UserID, Networks: p.Networks, UserAgents: p.UserAgents, Devices: p.Devices,
		HourHistogram: p.HourHistogram, RequestCount: p.RequestCount, FailedAuth: p.FailedAuth,
		LastSeen: p.LastSeen, LastLocation: p.LastLocation, Version: p.Version, Email: p.Email,
	}, nil
}

func (s riskStore) ApplyObservation(ctx context.Context, o riskengine.Observation) error {
	return s.st.ApplyObservation(ctx, store.Observation{
		UserID: o.UserID, Networks: o.Networks, UserAgents: o.UserAgents, Devices: o.Devices,
		HourCounts: o.HourCounts, Requests: o.Requests, FailedAuth: o.FailedAuth,
		LastSeen: o.LastSeen, LastLocation: o.LastLocation, Writer: o.Writer, Batch: o.Batch, Email: o.Email,
	})
}

func (s riskStore) GetFlag(ctx context.Context, userID string) (riskengine.Flag, error) {
	f, err := s.st.GetFlag(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return riskengine.Flag{}, riskengine.ErrNotFound
	}
	if err != nil {
		return riskengine.Flag{}, err
	}
	return riskengine.Flag{UserID: f.UserID, Level: f.Level, Reason: f.Reason, SetBy: f.SetBy, SetAt: f.SetAt, ExpiresAt: f.ExpiresAt}, nil
}

// openGeoIP opens a MaxMind (GeoIP2/GeoLite2 City) database for the
// impossible-travel signal.
func openGeoIP(path string) (riskengine.GeoLookup, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("risk.geoip_database: %w", err)
	}
	return riskengine.GeoLookupFunc(func(ip netip.Addr) (float64, float64, bool) {
		var rec struct {
			Location struct {
				Latitude  *float64 `maxminddb:"latitude"`
				Longitude *float64 `maxminddb:"longitude"`
			} `maxminddb:"location"`
		}
		res := db.Lookup(ip)
		if !res.Found() || res.Decode(&rec) != nil || rec.Location.Latitude == nil || rec.Location.Longitude == nil {
			return 0, 0, false
		}
		return *rec.Location.Latitude, *rec.Location.Longitude, true
	}), nil
}
