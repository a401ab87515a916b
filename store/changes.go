package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Continuous access evaluation needs two things of the shared store beyond
// single records: finding every session of a user or of an IdP session
// (SessionIndex), and telling every replica at once that something changed
// (ChangeFeed). Replicas poll the feed (one read per poll, whatever the
// traffic), so a pushed revocation reaches all of them within a poll
// interval, while requests of users without events read nothing more.

// Kinds of Change.
const (
	// ChangeSessions: the sessions SessionIDs were revoked (of UserID
	// when known).
	ChangeSessions = "sessions"
	// ChangeFlag: UserID's operator flag was set or cleared.
	ChangeFlag = "flag"
	// ChangeDevice: DeviceID's inventory record changed.
	ChangeDevice = "device"
)

// MaxChangeSessions bounds the session ids one Change carries; a user with
// more sessions gets several changes.
const MaxChangeSessions = 100

// ChangeRetention is how long the feed keeps a change. A replica that
// could not poll for longer re-reads its caches instead (see cae).
const ChangeRetention = time.Hour

// Change is one entry of the change feed.
type Change struct {
	// Seq orders the feed: PublishChange sets it to the publish time in
	// unix nanoseconds (zero-padded) and a random suffix, so it is unique
	// and sorts by time.
	Seq        string    `json:"seq"`
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	UserID     string    `json:"user_id,omitempty"`
	DeviceID   string    `json:"device_id,omitempty"`
	SessionIDs []string  `json:"session_ids,omitempty"`
}

// ChangePublisher appends to the change feed.
type ChangePublisher interface {
	// PublishChange appends c (Seq and At are set here) to the feed.
	PublishChange(ctx context.Context, c Change) error
}

// ChangeFeed tells every replica what changed.
type ChangeFeed interface {
	ChangePublisher
	// ChangesSince returns the changes published at or after since, in
	// Seq order, at most MaxChangesPerRead of them. Readers remember the
	// Seqs they applied: changes from replicas with a slower clock can
	// arrive with an older Seq, so readers ask with some overlap.
	ChangesSince(ctx context.Context, since time.Time) ([]Change, error)
}

// MaxChangesPerRead bounds one ChangesSince answer.
const MaxChangesPerRead = 1000

// SessionIndex finds sessions by user and by IdP session.
type SessionIndex interface {
	// RevokeUserSessions revokes every live session of userID and returns
	// the ids it revoked (none is not an error).
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error)
	// RevokeIdPSessions revokes every live session signed in through the
	// IdP named idp whose IdP session id ("sid" claim) is sid.
	RevokeIdPSessions(ctx context.Context, idp, sid string, at time.Time) ([]string, error)
}

// OnceStore remembers one-time identifiers (a logout token's or a
// security event's jti) across replicas.
type OnceStore interface {
	// ClaimOnce records key until until; ErrExists when it was already
	// recorded and has not expired (a replay).
	ClaimOnce(ctx context.Context, key string, until time.Time) error
}

// FlagLister lists operator flags, for the replicas' compromised set.
type FlagLister interface {
	// ListFlags returns every unexpired flag.
	ListFlags(ctx context.Context) ([]Flag, error)
}

// MaxOnceKeyBytes bounds a ClaimOnce key.
const MaxOnceKeyBytes = 512

// newChangeSeq names a change published at t.
func newChangeSeq(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return changeSeqPrefix(t) + "-" + hex.EncodeToString(b[:])
}

// changeSeqPrefix is the smallest Seq of a change published at t.
func changeSeqPrefix(t time.Time) string { return fmt.Sprintf("%019d", t.UnixNano()) }

func validateChange(c Change) error {
	switch c.Kind {
	case ChangeSessions:
		if len(c.SessionIDs) == 0 || len(c.SessionIDs) > MaxChangeSessions {
			return invalid("a sessions change names 1 to %d sessions", MaxChangeSessions)
		}
	case ChangeFlag:
		if err := validateUserID(c.UserID); err != nil {
			return err
		}
	case ChangeDevice:
		if c.DeviceID == "" {
			return invalid("a device change needs a device id")
		}
	default:
		return invalid("unknown change kind %q", c.Kind)
	}
	return nil
}

func validateOnceKey(key string) error {
	if key == "" || len(key) > MaxOnceKeyBytes || strings.ContainsRune(key, 0) {
		return invalid("one-time key must be 1 to %d bytes without NUL", MaxOnceKeyBytes)
	}
	return nil
}

// sidKey is the index key of an IdP session: the IdP name and its sid.
func sidKey(idp, sid string) string { return idp + "\x00" + sid }

// PublishSessions publishes the revocation of ids in changes of at most
// MaxChangeSessions each.
func PublishSessions(ctx context.Context, feed ChangePublisher, userID string, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), MaxChangeSessions)
		if err := feed.PublishChange(ctx, Change{Kind: ChangeSessions, UserID: userID, SessionIDs: ids[:n]}); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
