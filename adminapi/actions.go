package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"ztproxy/identity"
	"ztproxy/store"
)

// validUser refuses what cannot be a principal id: user ids are
// <issuer>#<sub>, services a SPIFFE id or <issuer>#<client_id>.
func validUser(id string) error {
	if len(id) == 0 || len(id) > 1024 || !strings.Contains(id, "#") && !strings.HasPrefix(id, "spiffe://") {
		return &inputError{"user must be a principal id: <issuer>#<sub>, <issuer>#<client_id> or a spiffe:// id"}
	}
	return nil
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *API) getFlag(ctx context.Context, user string) (any, error) {
	if err := validUser(user); err != nil {
		return nil, err
	}
	f, err := a.cfg.Store.GetFlag(ctx, user)
	if err != nil {
		return nil, err
	}
	return flagBody{User: f.UserID, Level: f.Level, Reason: f.Reason, SetBy: f.SetBy, SetAt: showTime(f.SetAt), ExpiresAt: showTime(f.ExpiresAt)}, nil
}

func (a *API) setFlag(ctx context.Context, r *http.Request, user string, operator identity.Principal) (any, error) {
	var in flagBody
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, &inputError{"the body must be JSON: {\"level\": \"compromised\"|\"watch\"|\"step_up\", \"reason\": \"…\", \"ttl_seconds\": 0}"}
	}
	if user == "" {
		user = in.User
	}
	if err := validUser(user); err != nil {
		return nil, err
	}
	if in.Level != store.FlagCompromised && in.Level != store.FlagWatch && in.Level != store.FlagStepUp {
		return nil, &inputError{"level must be compromised, watch or step_up"}
	}
	if in.Reason == "" || len(in.Reason) > 512 || in.TTLSeconds < 0 {
		return nil, &inputError{"reason (1 to 512 bytes) is required, ttl_seconds must not be negative"}
	}
	now := a.cfg.Now()
	f := store.Flag{UserID: user, Level: in.Level, Reason: in.Reason, SetBy: "admin-api:" + operator.ID, SetAt: now}
	if in.TTLSeconds > 0 {
		f.ExpiresAt = now.Add(time.Duration(in.TTLSeconds) * time.Second)
	}
	if err := a.cfg.Store.SetFlag(ctx, f); err != nil {
		return nil, err
	}
	a.publish(ctx, store.Change{Kind: store.ChangeFlag, UserID: user})
	return flagBody{User: user, Level: f.Level, Reason: f.Reason, SetBy: f.SetBy, SetAt: showTime(f.SetAt), ExpiresAt: showTime(f.ExpiresAt)}, nil
}

func (a *API) clearFlag(ctx context.Context, user string) error {
	if err := validUser(user); err != nil {
		return err
	}
	if err := a.cfg.Store.ClearFlag(ctx, user); err != nil {
		return err
	}
	a.publish(ctx, store.Change{Kind: store.ChangeFlag, UserID: user})
	return nil
}

// publish tells the replicas; a failure only delays them to the next
// full read (logged).
func (a *API) publish(ctx context.Context, c store.Change) {
	if err := a.cfg.Store.PublishChange(ctx, c); err != nil {
		a.cfg.Logger.Warn("admin API: change stored but not published; replicas apply it at their next full read", "err", err)
	}
}

func (a *API) revokeSessions(ctx context.Context, user string) (any, error) {
	if err := validUser(user); err != nil {
		return nil, err
	}
	ids, err := a.cfg.Sessions.RevokeUserSessions(ctx, user, a.cfg.Now())
	if err != nil {
		return nil, err
	}
	return map[string]any{"user": user, "revoked_sessions": len(ids)}, nil
}

// deviceBody is what the API shows of a device.
type deviceBody struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Owner        string `json:"owner"`
	Status       string `json:"status"`
	StatusReason string `json:"status_reason,omitempty"`
	StatusBy     string `json:"status_by,omitempty"`
	Managed      bool   `json:"managed"`
	LastSeen     string `json:"last_seen,omitempty"`
}

func (a *API) device(ctx context.Context, r *http.Request, op, id string, operator identity.Principal) (any, error) {
	if a.cfg.Devices == nil {
		return nil, &inputError{"devices are not configured"}
	}
	if op == "POST /device/revoke" {
		var in struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Reason == "" {
			return nil, &inputError{"the body must be JSON: {\"status\": \"revoked\"|\"lost\", \"reason\": \"…\"}"}
		}
		if in.Status == "" {
			in.Status = identity.DeviceRevoked
		}
		if in.Status != identity.DeviceRevoked && in.Status != identity.DeviceLost {
			return nil, &inputError{"status must be revoked or lost"}
		}
		// The inventory tells the replicas (devices.Config.Announce).
		if _, err := a.cfg.Devices.Revoke(ctx, id, in.Status, "admin-api:"+operator.ID, in.Reason); err != nil {
			return nil, err
		}
	}
	rec, err := a.cfg.Devices.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return deviceBody{ID: rec.ID, Name: rec.Name, Owner: rec.Owner, Status: rec.Status, StatusReason: rec.StatusReason,
		StatusBy: rec.StatusBy, Managed: rec.Managed, LastSeen: showTime(rec.LastSeen)}, nil
}
