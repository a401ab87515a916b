package main

import (
	"context"
	"errors"
	"fmt"

	"ztproxy/adminapi"
	"ztproxy/authn"
	"ztproxy/config"
	"ztproxy/decide"
	"ztproxy/devices"
	"ztproxy/signals"
	"ztproxy/store"
)

// buildSignals builds the Shared Signals receiver when transmitters are
// configured (issue 17); check-config builds it too, so its problems are
// reported at security_events.
func (in *instance) buildSignals(st store.Store, rep *config.Report) {
	f := in.rt.File
	if len(f.SecurityEvents.Transmitters) == 0 {
		return
	}
	revoker, ok := in.sessions.(authn.SessionRevoker)
	flags, ok2 := st.(signals.Flags)
	if !ok || !ok2 {
		rep.Add("security_events", errors.New("the store cannot find sessions or users for security events"))
		return
	}
	var ts []signals.Transmitter
	for _, t := range f.SecurityEvents.Transmitters {
		aud := t.Audience
		if aud == "" {
			aud = f.ExternalURL
		}
		ts = append(ts, signals.Transmitter{Name: t.Name, Issuer: t.Issuer, JWKSURL: t.JWKSURL, Audience: aud, IdP: t.IdP})
	}
	cfg := signals.Config{Transmitters: ts, Sessions: revoker, Flags: flags, Logger: in.logger,
		OnEvent: func(result string) { in.metrics.ObserveCAEEvent("set", result) }}
	if in.devices != nil {
		cfg.Devices = deviceCompliance{inv: in.devices}
	}
	r, err := signals.New(cfg)
	if err != nil {
		rep.Add("security_events", err)
		return
	}
	in.signals = r
}

// deviceCompliance records a transmitter's compliance verdict as the
// device's managed fact; the inventory tells the replicas (Announce).
type deviceCompliance struct {
	inv *devices.Inventory
}

func (d deviceCompliance) SetCompliance(ctx context.Context, id string, compliant bool, source string) error {
	if _, err := d.inv.SetManaged(ctx, id, compliant, source); err != nil {
		if errors.Is(err, devices.ErrNotFound) {
			return nil // not enrolled here: nothing to mark
		}
		return fmt.Errorf("device %s: %w", id, err)
	}
	return nil
}

// buildAdmin builds the operator API when operators are configured.
func (in *instance) buildAdmin(st store.Store, rep *config.Report) {
	a := in.rt.File.AdminAPI
	if !a.Enabled() {
		return
	}
	revoker, ok := in.sessions.(authn.SessionRevoker)
	if !ok {
		rep.Add("admin_api", errors.New("the store cannot find a user's sessions"))
		return
	}
	api, err := adminapi.New(adminapi.Config{
		ClientIDs: a.ClientSPIFFEIDs, BearerIdP: a.BearerIdP, AdminGroups: a.AdminGroups,
		Store: st, Sessions: revoker, Devices: in.devices, Logger: in.logger,
		OnAction: func(string) { in.metrics.ObserveCAEEvent("admin_api", "applied") },
	})
	if err != nil {
		rep.Add("admin_api", err)
		return
	}
	in.admin = api
}

// setAdmin stores the API without creating a non-nil interface around a
// nil pointer.
func setAdmin(c *decide.Config, a *adminapi.API) {
	if a != nil {
		c.Admin = a
	}
}

// setSignals stores the receiver without creating a non-nil interface
// around a nil pointer.
func setSignals(c *decide.Config, r *signals.Receiver) {
	if r != nil {
		c.Signals = r
	}
}
