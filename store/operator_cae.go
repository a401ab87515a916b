package store

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Continuous access evaluation over the operator socket: `ztproxy sessions
// revoke` and the change feed work while ztproxy serve holds the embedded
// store.

// SessionsRevoked is what the operator server's onChange callback
// receives, with the user id, after a user's sessions were revoked.
const SessionsRevoked = "sessions revoked"

// serveCAE answers the session-revocation and change-feed operations; it
// reports false for any other request.
func (h *operatorHandler) serveCAE(w http.ResponseWriter, r *http.Request) (handled bool) {
	ctx, user := r.Context(), r.URL.Query().Get("user")
	var out any
	var err error
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/sessions/revoke":
		var ids []string
		if ids, err = h.st.RevokeUserSessions(ctx, user, time.Now()); err == nil {
			out = nonNilStrings(ids)
			if h.onChange != nil {
				h.onChange(SessionsRevoked, user)
			}
		}
	case "POST /v1/changes":
		var c Change
		if err = json.NewDecoder(r.Body).Decode(&c); err != nil {
			err = invalid("change: %v", err)
			break
		}
		err = h.st.PublishChange(ctx, c)
	default:
		return false
	}
	writeOperatorAnswer(w, out, err)
	return true
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RevokeUserSessions revokes every live session of userID.
func (o *OperatorClient) RevokeUserSessions(ctx context.Context, userID string, _ time.Time) ([]string, error) {
	var ids []string
	err := o.do(ctx, http.MethodPost, "/v1/sessions/revoke", userQuery(userID), nil, &ids)
	return ids, err
}

// PublishChange appends c to the running proxy's change feed.
func (o *OperatorClient) PublishChange(ctx context.Context, c Change) error {
	return o.do(ctx, http.MethodPost, "/v1/changes", nil, c, nil)
}
