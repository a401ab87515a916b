package store

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltSession is a SessionRecord as stored in the embedded file, with the
// refresh token sealed.
type boltSession struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	IdP          string    `json:"idp,omitempty"`
	SID          string    `json:"sid,omitempty"`
	RefreshToken []byte    `json:"refresh_token,omitempty"`
	Sealed       bool      `json:"sealed,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	TokenExpiry  time.Time `json:"token_expiry"`
	ExpiresAt    time.Time `json:"expires_at"`
	Revoked      bool      `json:"revoked,omitempty"`
	RevokedAt    time.Time `json:"revoked_at"`
}

// PutSession creates a session; ErrExists if the id is taken.
func (b *Bolt) PutSession(ctx context.Context, rec SessionRecord) error {
	if err := validateSession(rec); err != nil {
		return err
	}
	token, sealed, err := sealToken(b.cfg.Sealer, rec.RefreshToken)
	if err != nil {
		return err
	}
	stored := boltSession{
		ID: rec.ID, UserID: rec.UserID, IdP: rec.IdP, SID: rec.SID, RefreshToken: token, Sealed: sealed,
		IDToken: rec.IDToken, TokenExpiry: rec.TokenExpiry, ExpiresAt: rec.ExpiresAt,
		Revoked: rec.Revoked, RevokedAt: rec.RevokedAt,
	}
	return b.update(ctx, "put session", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSessions)
		var old boltSession
		found, err := getJSON(bk, []byte(rec.ID), &old)
		if err != nil {
			return err
		}
		// An expired record is garbage, so its id may be reused.
		if found && !expired(old.ExpiresAt, b.cfg.Now()) {
			return ErrExists
		}
		if err := indexSession(tx, stored); err != nil {
			return err
		}
		return putJSON(bk, []byte(rec.ID), stored)
	})
}

// loadSession reads a live session inside tx; ErrNotFound when absent or
// expired.
func (b *Bolt) loadSession(tx *bolt.Tx, id string) (boltSession, error) {
	var s boltSession
	found, err := getJSON(tx.Bucket(bucketSessions), []byte(id), &s)
	if err != nil {
		return s, err
	}
	if !found || expired(s.ExpiresAt, b.cfg.Now()) {
		return s, ErrNotFound
	}
	return s, nil
}

// GetSession returns the session, revoked or not; ErrNotFound when absent
// or expired.
func (b *Bolt) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	var s boltSession
	err := b.view(ctx, "get session", func(tx *bolt.Tx) error {
		var err error
		s, err = b.loadSession(tx, id)
		return err
	})
	if err != nil {
		return SessionRecord{}, err
	}
	token, err := openToken(b.cfg.Sealer, s.RefreshToken, s.Sealed)
	if err != nil {
		return SessionRecord{}, err
	}
	return SessionRecord{
		ID: s.ID, UserID: s.UserID, IdP: s.IdP, SID: s.SID, RefreshToken: token, IDToken: s.IDToken,
		TokenExpiry: s.TokenExpiry, ExpiresAt: s.ExpiresAt, Revoked: s.Revoked, RevokedAt: s.RevokedAt,
	}, nil
}

// RevokeSession marks the session revoked, keeping the first revocation time.
func (b *Bolt) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return b.update(ctx, "revoke session", func(tx *bolt.Tx) error {
		s, err := b.loadSession(tx, id)
		if err != nil || s.Revoked {
			return err
		}
		s.Revoked, s.RevokedAt = true, at
		return putJSON(tx.Bucket(bucketSessions), []byte(id), s)
	})
}

// UpdateSessionTokens stores refreshed tokens of a live, unrevoked session.
func (b *Bolt) UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error {
	token, sealed, err := sealToken(b.cfg.Sealer, refreshToken)
	if err != nil {
		return err
	}
	return b.update(ctx, "update session tokens", func(tx *bolt.Tx) error {
		s, err := b.loadSession(tx, id)
		if err != nil {
			return err
		}
		if s.Revoked {
			return ErrRevoked
		}
		if refreshToken != "" {
			s.RefreshToken, s.Sealed = token, sealed
		}
		if idToken != "" {
			s.IDToken = idToken
		}
		s.TokenExpiry = tokenExpiry
		return putJSON(tx.Bucket(bucketSessions), []byte(id), s)
	})
}

// IsRevoked is true for revoked, expired and unknown sessions.
func (b *Bolt) IsRevoked(ctx context.Context, id string) (bool, error) {
	var revoked bool
	err := b.view(ctx, "check revocation", func(tx *bolt.Tx) error {
		s, err := b.loadSession(tx, id)
		if errors.Is(err, ErrNotFound) {
			revoked = true
			return nil
		}
		revoked = s.Revoked
		return err
	})
	if err != nil {
		return false, err
	}
	return revoked, nil
}
