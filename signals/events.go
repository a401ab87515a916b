package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"ztproxy/store"
)

// stepUpFlagTTL is how long a step_up flag set by an event lasts; the
// engine asks again only of authentications older than the event.
const stepUpFlagTTL = 24 * time.Hour

// apply acts on one event.
func (r *Receiver) apply(ctx context.Context, t *transmitter, ev event) error {
	users, err := r.users(ctx, ev.subject)
	if err != nil {
		return err
	}
	log := r.cfg.Logger.With("transmitter", t.Name, "event", ev.typ, "users", len(users))
	reason := t.Name + ": " + shortEvent(ev.typ)
	var errs []error
	switch ev.typ {
	case EventSessionRevoked:
		errs = append(errs, r.revokeSIDs(ctx, t, ev.subject.sids))
		if len(ev.subject.sids) == 0 {
			errs = append(errs, r.revokeUsers(ctx, users))
		}
	case EventTokenClaimsChange, EventSessionsRevoked:
		errs = append(errs, r.revokeUsers(ctx, users))
	case EventCredentialChange, EventAssuranceLevelChange:
		errs = append(errs, r.flagUsers(ctx, t, users, store.FlagStepUp, reason))
	case EventAccountDisabled, EventAccountPurged, EventCredentialCompromise:
		errs = append(errs, r.flagUsers(ctx, t, users, store.FlagCompromised, reason), r.revokeUsers(ctx, users))
	case EventAccountEnabled:
		errs = append(errs, r.clearFlags(ctx, t, users))
	case EventDeviceComplianceChange:
		errs = append(errs, r.deviceCompliance(ctx, t, ev))
	default:
		log.Info("security event of an unknown type acknowledged and ignored")
		r.count("ignored")
		return nil
	}
	err = errors.Join(errs...)
	if err == nil {
		log.Info("security event applied")
		r.count("applied")
	}
	return err
}

func (r *Receiver) count(result string) {
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(result)
	}
}

// shortEvent is the last segment of an event type URI.
func shortEvent(typ string) string {
	for i := len(typ) - 1; i >= 0; i-- {
		if typ[i] == '/' {
			return typ[i+1:]
		}
	}
	return typ
}

// users resolves the subject's users: ids as given, emails through the
// profiles the proxy has seen.
func (r *Receiver) users(ctx context.Context, s subject) ([]string, error) {
	users := append([]string(nil), s.users...)
	for _, email := range s.emails {
		ids, err := r.cfg.Flags.FindUsersByEmail(ctx, email)
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", "an email subject", err)
		}
		users = append(users, ids...)
	}
	return users, nil
}

func (r *Receiver) revokeUsers(ctx context.Context, users []string) error {
	var errs []error
	for _, u := range users {
		if _, err := r.cfg.Sessions.RevokeUserSessions(ctx, u, r.cfg.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Receiver) revokeSIDs(ctx context.Context, t *transmitter, sids []string) error {
	if len(sids) > 0 && t.IdP == "" {
		r.cfg.Logger.Warn("session subject ignored: the transmitter names no idp", "transmitter", t.Name)
		return nil
	}
	var errs []error
	for _, sid := range sids {
		if _, err := r.cfg.Sessions.RevokeIdPSessions(ctx, t.IdP, sid, r.cfg.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flagUsers sets level on each user and tells the replicas. A step_up
// flag never replaces a compromised one.
func (r *Receiver) flagUsers(ctx context.Context, t *transmitter, users []string, level, reason string) error {
	now := r.cfg.Now()
	var errs []error
	for _, u := range users {
		if level == store.FlagStepUp {
			if f, err := r.cfg.Flags.GetFlag(ctx, u); err == nil && f.Level == store.FlagCompromised {
				continue
			}
		}
		f := store.Flag{UserID: u, Level: level, Reason: reason, SetBy: "ssf:" + t.Name, SetAt: now}
		if level == store.FlagStepUp {
			f.ExpiresAt = now.Add(stepUpFlagTTL)
		}
		if err := r.cfg.Flags.SetFlag(ctx, f); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, r.cfg.Flags.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: u}))
	}
	return errors.Join(errs...)
}

// clearFlags clears flags this transmitter set (an operator's flag stays).
func (r *Receiver) clearFlags(ctx context.Context, t *transmitter, users []string) error {
	var errs []error
	for _, u := range users {
		f, err := r.cfg.Flags.GetFlag(ctx, u)
		if err != nil || f.SetBy != "ssf:"+t.Name {
			continue
		}
		if err := r.cfg.Flags.ClearFlag(ctx, u); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, r.cfg.Flags.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: u}))
	}
	return errors.Join(errs...)
}

// deviceCompliance marks the subject's devices per current_status.
func (r *Receiver) deviceCompliance(ctx context.Context, t *transmitter, ev event) error {
	var status string // checked by parseEvents
	_ = json.Unmarshal(ev.payload["current_status"], &status)
	if r.cfg.Devices == nil || len(ev.subject.devices) == 0 {
		r.cfg.Logger.Info("device compliance event without a known device acknowledged", "transmitter", t.Name)
		return nil
	}
	var errs []error
	for _, d := range ev.subject.devices {
		errs = append(errs, r.cfg.Devices.SetCompliance(ctx, d, status == "compliant", "ssf:"+t.Name))
	}
	return errors.Join(errs...)
}
