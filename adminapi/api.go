package adminapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"ztproxy/authn"
	"ztproxy/devices"
	"ztproxy/identity"
	"ztproxy/store"
)

// Prefix is the API's path prefix on the public listener.
const Prefix = "/.ztp/admin/v1/"

// maxBody bounds a request body.
const maxBody = 16 << 10

// Store is what the API needs of the store: flags, and telling the
// replicas about changes.
type Store interface {
	store.FlagStore
	store.ChangePublisher
}

// Config configures the API.
type Config struct {
	// ClientIDs are the SPIFFE ids of client certificates (verified by
	// the listener's client CA) allowed to call the API.
	ClientIDs []string
	// BearerIdP, with AdminGroups, allows bearer tokens from that
	// configured IdP whose groups include one of AdminGroups.
	BearerIdP   string
	AdminGroups []string
	Store       Store
	// Sessions ends a user's sessions everywhere (authn's session store
	// adapter).
	Sessions authn.SessionRevoker
	// Devices is the inventory; nil without devices.
	Devices *devices.Inventory
	Logger  *slog.Logger
	Now     func() time.Time
	// OnAction, when set, counts actions by name.
	OnAction func(action string)
}

// API serves the operator API.
type API struct{ cfg Config }

// New checks cfg.
func New(cfg Config) (*API, error) {
	if len(cfg.ClientIDs) == 0 && (cfg.BearerIdP == "" || len(cfg.AdminGroups) == 0) {
		return nil, errors.New("adminapi: list client_spiffe_ids, or bearer_idp with admin_groups: the API is never anonymous")
	}
	if cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("adminapi: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{cfg: cfg}, nil
}

// Allowed reports whether the authenticated principal is an operator: a
// listed client certificate, or a bearer user of the admin IdP in an
// admin group.
func (a *API) Allowed(p identity.Principal) bool {
	switch p.AuthKind {
	case identity.AuthMTLS:
		return p.ID != "" && slices.Contains(a.cfg.ClientIDs, p.ID)
	case identity.AuthBearer:
		if a.cfg.BearerIdP == "" || p.IdP != a.cfg.BearerIdP {
			return false
		}
		for _, g := range p.Groups {
			if slices.Contains(a.cfg.AdminGroups, g) {
				return true
			}
		}
	}
	return false
}

// flagBody is a flag as the API reads and writes it.
type flagBody struct {
	User       string `json:"user"`
	Level      string `json:"level"`
	Reason     string `json:"reason"`
	SetBy      string `json:"set_by,omitempty"`
	SetAt      string `json:"set_at,omitempty"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
}

// ServeAdmin answers one API call by an authenticated operator.
func (a *API) ServeAdmin(w http.ResponseWriter, r *http.Request, operator identity.Principal) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ctx, q := r.Context(), r.URL.Query()
	op := r.Method + " " + r.URL.Path[len(Prefix)-1:]
	var out any
	var err error
	target := q.Get("user")
	switch op {
	case "GET /flag":
		out, err = a.getFlag(ctx, target)
	case "PUT /flag":
		out, err = a.setFlag(ctx, r, target, operator)
	case "DELETE /flag":
		err = a.clearFlag(ctx, target)
	case "POST /sessions/revoke":
		out, err = a.revokeSessions(ctx, target)
	case "GET /device", "POST /device/revoke":
		target = q.Get("id")
		out, err = a.device(ctx, r, op, target, operator)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown_operation"})
		return
	}
	if err == nil && r.Method != http.MethodGet {
		a.cfg.Logger.Info("admin API action", "action", op, "target", target, "operator", operator.ID, "auth", operator.AuthKind)
		if a.cfg.OnAction != nil {
			a.cfg.OnAction(op)
		}
	}
	writeAnswer(w, out, err)
}

// inputError is a caller's mistake (400).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func writeAnswer(w http.ResponseWriter, out any, err error) {
	var ie *inputError
	switch {
	case errors.As(err, &ie):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": ie.msg})
	case errors.Is(err, store.ErrNotFound), errors.Is(err, devices.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "error_description": "the store could not complete the action; retry"})
	case out == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
