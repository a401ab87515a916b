package store

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// indexSession adds a session to the user and IdP-session indexes.
func indexSession(tx *bolt.Tx, s boltSession) error {
	if err := tx.Bucket(bucketSessionUsers).Put([]byte(s.UserID+"\x00"+s.ID), nil); err != nil {
		return err
	}
	if s.SID == "" {
		return nil
	}
	return tx.Bucket(bucketSessionSIDs).Put([]byte(sidKey(s.IdP, s.SID)+"\x00"+s.ID), nil)
}

// RevokeUserSessions revokes every live session of userID.
func (b *Bolt) RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	return b.revokeIndexed(ctx, bucketSessionUsers, userID, at)
}

// RevokeIdPSessions revokes every live session of the IdP session sid.
func (b *Bolt) RevokeIdPSessions(ctx context.Context, idp, sid string, at time.Time) ([]string, error) {
	if idp == "" || sid == "" {
		return nil, invalid("idp and sid are required")
	}
	return b.revokeIndexed(ctx, bucketSessionSIDs, sidKey(idp, sid), at)
}

// revokeIndexed revokes the live sessions listed in index under prefix
// (prefix\x00<session id>) in one transaction, dropping index entries of
// sessions that are gone.
func (b *Bolt) revokeIndexed(ctx context.Context, index []byte, prefix string, at time.Time) ([]string, error) {
	var revoked []string
	err := b.update(ctx, "revoke sessions", func(tx *bolt.Tx) error {
		revoked = nil
		p := []byte(prefix + "\x00")
		var stale [][]byte
		c := tx.Bucket(index).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			id := string(k[len(p):])
			s, err := b.loadSession(tx, id)
			if err == ErrNotFound {
				stale = append(stale, append([]byte(nil), k...))
				continue
			}
			if err != nil {
				return err
			}
			if s.Revoked {
				continue
			}
			s.Revoked, s.RevokedAt = true, at
			if err := putJSON(tx.Bucket(bucketSessions), []byte(id), s); err != nil {
				return err
			}
			revoked = append(revoked, id)
		}
		for _, k := range stale {
			if err := tx.Bucket(index).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return revoked, err
}

// PublishChange appends c to the feed.
func (b *Bolt) PublishChange(ctx context.Context, c Change) error {
	if err := validateChange(c); err != nil {
		return err
	}
	c.At = b.cfg.Now()
	c.Seq = newChangeSeq(c.At)
	return b.update(ctx, "publish change", func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketChanges), []byte(c.Seq), c)
	})
}

// ChangesSince returns the changes published at or after since.
func (b *Bolt) ChangesSince(ctx context.Context, since time.Time) ([]Change, error) {
	var out []Change
	err := b.view(ctx, "read changes", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek([]byte(changeSeqPrefix(since))); k != nil && len(out) < MaxChangesPerRead; k, v = c.Next() {
			var ch Change
			if err := json.Unmarshal(v, &ch); err != nil {
				continue // a record this version cannot read is not an event
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}

// ClaimOnce records key until until; ErrExists for an unexpired key.
func (b *Bolt) ClaimOnce(ctx context.Context, key string, until time.Time) error {
	if err := validateOnceKey(key); err != nil {
		return err
	}
	return b.update(ctx, "claim one-time key", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketOnce)
		var old time.Time
		if found, err := getJSON(bk, []byte(key), &old); err != nil || found && !expired(old, b.cfg.Now()) {
			if err == nil {
				err = ErrExists
			}
			return err
		}
		return putJSON(bk, []byte(key), until)
	})
}

// ListFlags returns every unexpired flag.
func (b *Bolt) ListFlags(ctx context.Context) ([]Flag, error) {
	var out []Flag
	now := b.cfg.Now()
	err := b.view(ctx, "list flags", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFlags).ForEach(func(_, v []byte) error {
			var f Flag
			if json.Unmarshal(v, &f) == nil && !expired(f.ExpiresAt, now) {
				out = append(out, f)
			}
			return nil
		})
	})
	return out, err
}

// purgeCAE deletes changes older than ChangeRetention and expired
// one-time keys.
func (b *Bolt) purgeCAE(tx *bolt.Tx, now time.Time) (int, error) {
	n := 0
	bk := tx.Bucket(bucketChanges)
	cutoff := []byte(changeSeqPrefix(now.Add(-ChangeRetention)))
	var doomed [][]byte
	c := bk.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
		doomed = append(doomed, append([]byte(nil), k...))
	}
	for _, k := range doomed {
		if err := bk.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	m, err := purgeBucket(tx.Bucket(bucketOnce), func(v []byte) bool {
		var until time.Time
		return json.Unmarshal(v, &until) == nil && expired(until, now)
	})
	return n + m, err
}
