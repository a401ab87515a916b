package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ztproxy/authn"
	"ztproxy/store"
)

// OpenStore opens the configured state backend. The embedded store holds
// a file lock: one process at a time. onCall, if set, observes every
// DynamoDB call (for metrics).
func OpenStore(ctx context.Context, f *File, onCall func(op string, d time.Duration, err error)) (store.Store, error) {
	sealer, err := storeSealer(f)
	if err != nil {
		return nil, err
	}
	switch f.Store.Backend {
	case "dynamodb":
		return store.NewDynamo(ctx, store.DynamoConfig{
			Region: f.Store.Region, TablePrefix: f.Store.TablePrefix, Endpoint: f.Store.Endpoint, Sealer: sealer,
			OnCall: onCall,
		})
	default:
		return store.OpenBolt(store.BoltConfig{Path: f.Store.Path, Sealer: sealer})
	}
}

// storeSealer seals refresh tokens at rest with the session secrets; nil
// without session secrets.
func storeSealer(f *File) (store.Sealer, error) {
	if len(f.Session.SecretKeys) == 0 {
		return nil, nil
	}
	s, err := authn.NewTokenSealer(f.Session.SecretKeys)
	if err != nil {
		return nil, fmt.Errorf("session.secrets: %w", err)
	}
	return s, nil
}

// SessionStore presents a store as authn's session store, with the hot
// path's revocation checks answered from a cache of the given TTL.
func SessionStore(st store.SessionStore, ttl time.Duration) authn.SessionStore {
	return &sessionStore{st: st, revoked: store.NewRevocationCache(st, store.RevocationCacheConfig{TTL: ttl})}
}

type sessionStore struct {
	st      store.SessionStore
	revoked *store.RevocationCache
}

var _ authn.SessionStore = (*sessionStore)(nil)

func (s *sessionStore) SaveSession(ctx context.Context, rec authn.SessionRecord) error {
	return s.st.PutSession(ctx, store.SessionRecord{
		ID: rec.ID, UserID: rec.UserID, IdP: rec.IdP, RefreshToken: rec.RefreshToken, IDToken: rec.IDToken,
		TokenExpiry: rec.TokenExpiry, ExpiresAt: rec.ExpiresAt,
	})
}

func (s *sessionStore) LoadSession(ctx context.Context, id string) (authn.SessionRecord, error) {
	rec, err := s.st.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authn.SessionRecord{}, authn.ErrSessionNotFound
	case err != nil:
		return authn.SessionRecord{}, fmt.Errorf("loading session: %w", err)
	case rec.Revoked:
		return authn.SessionRecord{}, authn.ErrSessionRevoked
	}
	return authn.SessionRecord{
		ID: rec.ID, UserID: rec.UserID, IdP: rec.IdP, RefreshToken: rec.RefreshToken, IDToken: rec.IDToken,
		TokenExpiry: rec.TokenExpiry, ExpiresAt: rec.ExpiresAt,
	}, nil
}

func (s *sessionStore) RevokeSession(ctx context.Context, id string, at time.Time) error {
	err := s.st.RevokeSession(ctx, id, at)
	if errors.Is(err, store.ErrNotFound) {
		return authn.ErrSessionNotFound
	}
	if err == nil {
		s.revoked.MarkRevoked(id)
	}
	return err
}

func (s *sessionStore) UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error {
	err := s.st.UpdateSessionTokens(ctx, id, refreshToken, idToken, tokenExpiry)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authn.ErrSessionNotFound
	case errors.Is(err, store.ErrRevoked):
		return authn.ErrSessionRevoked
	}
	return err
}

func (s *sessionStore) IsRevoked(ctx context.Context, id string) (bool, error) {
	return s.revoked.IsRevoked(ctx, id)
}
