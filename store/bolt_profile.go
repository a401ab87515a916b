package store

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// GetProfile returns the user's profile or ErrNotFound.
func (b *Bolt) GetProfile(ctx context.Context, userID string) (Profile, error) {
	var p Profile
	err := b.view(ctx, "get profile", func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketProfiles), []byte(userID), &p)
		if err == nil && !found {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Profile{}, err
	}
	return p, nil
}

// ApplyObservation merges obs into the profile in one write transaction.
func (b *Bolt) ApplyObservation(ctx context.Context, obs Observation) error {
	if err := validateObservation(obs); err != nil {
		return err
	}
	return b.update(ctx, "apply observation", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketProfiles)
		var p Profile
		if _, err := getJSON(bk, []byte(obs.UserID), &p); err != nil {
			return err
		}
		mergeObservation(&p, obs, b.cfg.MaxMapEntries)
		return putJSON(bk, []byte(obs.UserID), p)
	})
}

// credentialKey is user NUL id, so that a user's credentials are one prefix.
func credentialKey(userID string, id []byte) []byte {
	k := make([]byte, 0, len(userID)+1+len(id))
	k = append(append(append(k, userID...), 0), id...)
	return k
}

// PutCredential registers a credential; ErrExists for a known id.
func (b *Bolt) PutCredential(ctx context.Context, c Credential) error {
	if err := validateCredential(c); err != nil {
		return err
	}
	return b.update(ctx, "put credential", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCredentials)
		key := credentialKey(c.UserID, c.ID)
		if bk.Get(key) != nil {
			return ErrExists
		}
		return putJSON(bk, key, c)
	})
}

// ListCredentials returns the user's credentials ordered by creation.
func (b *Bolt) ListCredentials(ctx context.Context, userID string) ([]Credential, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	var out []Credential
	prefix := credentialKey(userID, nil)
	err := b.view(ctx, "list credentials", func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketCredentials).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			var c Credential
			if _, err := getJSON(tx.Bucket(bucketCredentials), k, &c); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// DeleteCredential removes one credential; ErrNotFound when absent.
func (b *Bolt) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	return b.update(ctx, "delete credential", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCredentials)
		key := credentialKey(userID, id)
		if bk.Get(key) == nil {
			return ErrNotFound
		}
		return bk.Delete(key)
	})
}

// UpdateSignCount stores a grown signature counter and the time of use.
func (b *Bolt) UpdateSignCount(ctx context.Context, userID string, id []byte, newCount uint32) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	return b.update(ctx, "update sign count", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCredentials)
		key := credentialKey(userID, id)
		var c Credential
		found, err := getJSON(bk, key, &c)
		switch {
		case err != nil:
			return err
		case !found:
			return ErrNotFound
		case !signCountAllowed(c.SignCount, newCount):
			return ErrSignCountRegression
		}
		c.SignCount, c.LastUsed = newCount, b.cfg.Now()
		return putJSON(bk, key, c)
	})
}

// FindUsersByEmail scans the profiles for the verified address email. The
// embedded store holds one deployment's users, so a scan is cheap enough
// for an operator's command.
func (b *Bolt) FindUsersByEmail(ctx context.Context, email string) ([]string, error) {
	var ids []string
	err := b.view(ctx, "find users by email", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			var p struct{ Email string }
			if json.Unmarshal(v, &p) == nil && sameEmail(p.Email, email) && len(ids) < MaxUsersByEmail {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	return ids, err
}
