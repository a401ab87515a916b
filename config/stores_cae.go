package config

import (
	"context"
	"errors"
	"time"

	"ztproxy/authn"
	"ztproxy/store"
)

// The session store's continuous access evaluation side (issue 17): find
// sessions by user or IdP session, revoke them here at once, and tell the
// other replicas through the change feed.

var _ authn.SessionRevoker = (*sessionStore)(nil)

// RevokeIdPSessions revokes the sessions of an IdP session (back-channel
// logout by sid).
func (s *sessionStore) RevokeIdPSessions(ctx context.Context, idp, sid string, at time.Time) ([]string, error) {
	idx, ok := s.st.(store.SessionIndex)
	if !ok {
		return nil, errors.New("store: no session index")
	}
	ids, err := idx.RevokeIdPSessions(ctx, idp, sid, at)
	return ids, s.announce(ctx, "", ids, err)
}

// RevokeUserSessions revokes every session of a user (back-channel logout
// by sub, security events, the admin API).
func (s *sessionStore) RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error) {
	idx, ok := s.st.(store.SessionIndex)
	if !ok {
		return nil, errors.New("store: no session index")
	}
	ids, err := idx.RevokeUserSessions(ctx, userID, at)
	return ids, s.announce(ctx, userID, ids, err)
}

// announce refuses ids here and publishes them; what was revoked before
// an error is announced too.
func (s *sessionStore) announce(ctx context.Context, userID string, ids []string, err error) error {
	for _, id := range ids {
		s.revoked.MarkRevoked(id)
	}
	s.reachable(err)
	if feed, ok := s.st.(store.ChangePublisher); ok && len(ids) > 0 {
		// Best effort: the revocation is stored, and the other replicas'
		// caches expire within revocation_cache_ttl without the feed
		// (the failed call shows in ztproxy_store_calls_total).
		_ = store.PublishSessions(ctx, feed, userID, ids)
	}
	return err
}

// ClaimOnce records a one-time identifier shared by all replicas.
func (s *sessionStore) ClaimOnce(ctx context.Context, key string, until time.Time) error {
	once, ok := s.st.(store.OnceStore)
	if !ok {
		return errors.New("store: no one-time keys")
	}
	err := once.ClaimOnce(ctx, key, until)
	if errors.Is(err, store.ErrExists) {
		return authn.ErrReplay
	}
	return err
}
