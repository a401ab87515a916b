package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ztproxy/authn"
	"ztproxy/store"
	"ztproxy/tracing"
)

// OpenStore opens the configured state backend. The embedded store holds
// a file lock: one process at a time. onCall, if set, observes every
// DynamoDB call (for metrics).
func OpenStore(ctx context.Context, f *File, onCall func(op string, d time.Duration, err error)) (store.Store, error) {
	return OpenTracedStore(ctx, f, onCall, nil)
}

// OpenTracedStore is OpenStore with a trace span around every DynamoDB
// call (tracer nil: none).
func OpenTracedStore(ctx context.Context, f *File, onCall func(op string, d time.Duration, err error), tracer *tracing.Tracer) (store.Store, error) {
	sealer, err := storeSealer(f)
	if err != nil {
		return nil, err
	}
	switch f.Store.Backend {
	case "dynamodb":
		return store.NewDynamo(ctx, store.DynamoConfig{
			Region: f.Store.Region, TablePrefix: f.Store.TablePrefix, Endpoint: f.Store.Endpoint, Sealer: sealer,
			OnCall: onCall, StartSpan: tracer.ClientSpans("DynamoDB"),
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
// path's revocation checks answered from a cache of the given TTL. A
// revocation takes effect on this replica at once; when the store cannot
// record it, pending (which must be running) keeps it refused here and
// retries the write. A nil pending reports such failures as plain errors.
func SessionStore(st store.SessionStore, ttl time.Duration, pending *store.PendingRevocations) authn.SessionStore {
	return &sessionStore{st: st, revoked: store.NewRevocationCache(st, store.RevocationCacheConfig{TTL: ttl}), pending: pending}
}

// OpenPendingRevocations opens the revocation journal the config names (a
// memory-only queue without one). onPending and onResult feed metrics.
func OpenPendingRevocations(f *File, st store.SessionStore, onPending func(int), onResult func(string)) (*store.PendingRevocations, error) {
	p, err := store.OpenPendingRevocations(store.PendingRevocationsConfig{
		Store: st, JournalPath: f.Store.RevocationJournal, MaxAge: f.Session.Lifetime,
		OnPending: onPending, OnResult: onResult,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

type sessionStore struct {
	st      store.SessionStore
	revoked *store.RevocationCache
	pending *store.PendingRevocations
}

var _ authn.SessionStore = (*sessionStore)(nil)

// reachable notes a store call that succeeded, so pending revocations
// are retried now.
func (s *sessionStore) reachable(err error) {
	if s.pending != nil && (err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) || errors.Is(err, store.ErrExists)) {
		s.pending.StoreReachable()
	}
}

func (s *sessionStore) SaveSession(ctx context.Context, rec authn.SessionRecord) error {
	err := s.st.PutSession(ctx, store.SessionRecord{
		ID: rec.ID, UserID: rec.UserID, IdP: rec.IdP, SID: rec.SID, RefreshToken: rec.RefreshToken, IDToken: rec.IDToken,
		TokenExpiry: rec.TokenExpiry, ExpiresAt: rec.ExpiresAt,
	})
	s.reachable(err)
	return err
}

func (s *sessionStore) LoadSession(ctx context.Context, id string) (authn.SessionRecord, error) {
	rec, err := s.st.GetSession(ctx, id)
	s.reachable(err)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authn.SessionRecord{}, authn.ErrSessionNotFound
	case err != nil:
		return authn.SessionRecord{}, fmt.Errorf("loading session: %w", err)
	case rec.Revoked || s.pending != nil && s.pending.Has(id):
		return authn.SessionRecord{}, authn.ErrSessionRevoked
	}
	return authn.SessionRecord{
		ID: rec.ID, UserID: rec.UserID, IdP: rec.IdP, RefreshToken: rec.RefreshToken, IDToken: rec.IDToken,
		TokenExpiry: rec.TokenExpiry, ExpiresAt: rec.ExpiresAt,
	}, nil
}

// MarkRevoked makes sessions revoked elsewhere (the change feed: another
// replica, a back-channel logout, the kill switch) refused here at once.
// sessions must come from SessionStore; anything else is ignored.
func MarkRevoked(sessions authn.SessionStore, ids []string) {
	if s, ok := sessions.(*sessionStore); ok {
		for _, id := range ids {
			s.revoked.MarkRevoked(id)
		}
	}
}

// RevokeSession refuses the session here first, then writes the
// revocation; a failed write is left to the pending queue (issue 22.6: a
// sign-out during a store outage used to change nothing on this replica).
// A recorded revocation is published on the change feed, so every replica
// refuses the session within its poll interval (issue 17), not its
// revocation cache TTL.
func (s *sessionStore) RevokeSession(ctx context.Context, id string, at time.Time) error {
	s.revoked.MarkRevoked(id)
	err := s.st.RevokeSession(ctx, id, at)
	s.reachable(err)
	switch {
	case err == nil:
		if feed, ok := s.st.(store.ChangePublisher); ok {
			// Best effort: the other replicas' caches expire anyway.
			_ = feed.PublishChange(ctx, store.Change{Kind: store.ChangeSessions, SessionIDs: []string{id}})
		}
		return nil
	case errors.Is(err, store.ErrNotFound):
		return authn.ErrSessionNotFound
	case s.pending == nil:
		return err
	}
	if perr := s.pending.Add(id, at); perr != nil {
		if errors.Is(perr, store.ErrTooManyPending) {
			return fmt.Errorf("%w: %w", perr, err)
		}
		// Pending in memory, but a restart would forget it.
		return fmt.Errorf("%w: %w (%w)", authn.ErrRevocationPending, err, perr)
	}
	return fmt.Errorf("%w: %w", authn.ErrRevocationPending, err)
}

func (s *sessionStore) UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error {
	if s.pending != nil && s.pending.Has(id) {
		return authn.ErrSessionRevoked
	}
	err := s.st.UpdateSessionTokens(ctx, id, refreshToken, idToken, tokenExpiry)
	s.reachable(err)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authn.ErrSessionNotFound
	case errors.Is(err, store.ErrRevoked):
		return authn.ErrSessionRevoked
	}
	return err
}

// IsRevoked answers a pending revocation from memory, then the cache.
func (s *sessionStore) IsRevoked(ctx context.Context, id string) (bool, error) {
	if s.pending != nil && s.pending.Has(id) {
		return true, nil
	}
	return s.revoked.IsRevoked(ctx, id)
}
