package main

import (
	"context"
	"time"

	"ztproxy/cae"
	"ztproxy/config"
	"ztproxy/decide"
	"ztproxy/store"
)

// buildCAE starts continuous access evaluation (issue 17) over the store:
// the compromised set the engine refuses, and the change feed that brings
// other replicas' revocations, flags and device changes here within its
// poll interval. serve only: check-config reads no feed.
func (in *instance) buildCAE(ctx context.Context, st store.Store, mode startMode) {
	if mode != assembleServe {
		return
	}
	ev, err := cae.New(cae.Config{
		Store: st, Logger: in.logger,
		OnSessions: func(ids []string) { config.MarkRevoked(in.sessions, ids) },
		OnFlag: func(userID string) {
			if in.risk != nil {
				in.risk.Invalidate(userID)
			}
		},
		OnDevice: func(id string) {
			if in.devices != nil {
				in.devices.Forget(id)
			}
		},
		OnPoll: in.metrics.ObserveCAEPoll,
	})
	if err != nil {
		in.logger.Error("continuous access evaluation not started", "err", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ev.Start(sctx); err != nil {
		in.logger.Warn("compromised flags not loaded yet; requests are refused (503) until the store answers", "err", err)
	}
	in.cae = ev
	in.closers = append(in.closers, ev.Close)
}

// setGuard stores the evaluator without creating a non-nil interface
// around a nil pointer.
func setGuard(c *decide.Config, ev *cae.Evaluator) {
	if ev != nil {
		c.Guard = ev
	}
}
