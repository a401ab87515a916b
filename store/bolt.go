package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the embedded store.
var (
	bucketSessions    = []byte("sessions")
	bucketProfiles    = []byte("profiles")
	bucketFlags       = []byte("flags")
	bucketCredentials = []byte("credentials")
	bucketDevices     = []byte("devices")
	// Continuous access evaluation: the change feed, one-time keys and
	// the session indexes (keys user\x00session and idp\x00sid\x00session).
	bucketChanges      = []byte("changes")
	bucketOnce         = []byte("once")
	bucketSessionUsers = []byte("session_users")
	bucketSessionSIDs  = []byte("session_sids")
)

// BoltConfig configures the embedded store.
type BoltConfig struct {
	// Path is the database file; it is created with mode 0600.
	Path string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sealer encrypts refresh tokens at rest. It MUST be set in production.
	Sealer Sealer
	// MaxMapEntries bounds each profile map; DefaultMaxMapEntries when 0.
	MaxMapEntries int
	// PurgeInterval is how often expired sessions and flags are deleted
	// from the file; one hour when 0, never when negative.
	PurgeInterval time.Duration
}

// Bolt is the embedded store: one bbolt file, used by a single replica (the
// file is locked while open). Every write is one bbolt transaction, so merges
// are serialised and nothing is lost.
type Bolt struct {
	db     *bolt.DB
	cfg    BoltConfig
	stop   chan struct{}
	wg     sync.WaitGroup
	closer sync.Once
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the embedded store at cfg.Path.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.Path == "" {
		return nil, invalid("bolt path is empty")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxMapEntries <= 0 {
		cfg.MaxMapEntries = DefaultMaxMapEntries
	}
	if cfg.PurgeInterval == 0 {
		cfg.PurgeInterval = time.Hour
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: opening %s: the file is locked by another process: %w", cfg.Path, err)
		}
		return nil, fmt.Errorf("store: opening %s: %w", cfg.Path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSessions, bucketProfiles, bucketFlags, bucketCredentials, bucketDevices,
			bucketChanges, bucketOnce, bucketSessionUsers, bucketSessionSIDs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: creating buckets in %s: %w", cfg.Path, err)
	}
	b := &Bolt{db: db, cfg: cfg, stop: make(chan struct{})}
	if cfg.PurgeInterval > 0 {
		b.wg.Add(1)
		go b.purgeLoop()
	}
	return b, nil
}

// Close stops the purge loop and closes the file.
func (b *Bolt) Close() error {
	var err error
	b.closer.Do(func() {
		close(b.stop)
		b.wg.Wait()
		if cerr := b.db.Close(); cerr != nil {
			err = fmt.Errorf("store: closing bolt: %w", cerr)
		}
	})
	return err
}

func (b *Bolt) purgeLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.cfg.PurgeInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			_, _ = b.PurgeExpired(context.Background())
		}
	}
}

// PurgeExpired deletes expired sessions and flags and returns how many. It
// is the embedded counterpart of DynamoDB TTL; reads filter expired records
// regardless.
func (b *Bolt) PurgeExpired(ctx context.Context) (int, error) {
	now := b.cfg.Now()
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		n, err = purgeBucket(tx.Bucket(bucketSessions), func(v []byte) bool {
			var rec boltSession
			return json.Unmarshal(v, &rec) == nil && expired(rec.ExpiresAt, now)
		})
		if err != nil {
			return err
		}
		m, err := purgeBucket(tx.Bucket(bucketFlags), func(v []byte) bool {
			var f Flag
			return json.Unmarshal(v, &f) == nil && expired(f.ExpiresAt, now)
		})
		n += m
		if err != nil {
			return err
		}
		m, err = b.purgeCAE(tx, now)
		n += m
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purging expired records: %w", err)
	}
	return n, ctx.Err()
}

func purgeBucket(bk *bolt.Bucket, isExpired func([]byte) bool) (int, error) {
	var doomed [][]byte
	err := bk.ForEach(func(k, v []byte) error {
		if isExpired(v) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range doomed {
		if err == nil {
			err = bk.Delete(k)
		}
	}
	return len(doomed), err
}

// getJSON decodes the value at key; found is false when it is absent.
func getJSON(bk *bolt.Bucket, key []byte, into any) (found bool, err error) {
	v := bk.Get(key)
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(v, into); err != nil {
		return true, fmt.Errorf("store: decoding record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(bk *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encoding record: %w", err)
	}
	return bk.Put(key, data)
}

// view and update run fn in a transaction after checking ctx, and wrap
// errors other than the package's sentinels.
func (b *Bolt) view(ctx context.Context, what string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return wrapBolt(what, b.db.View(fn))
}

func (b *Bolt) update(ctx context.Context, what string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return wrapBolt(what, b.db.Update(fn))
}

func wrapBolt(what string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) ||
		errors.Is(err, ErrRevoked) || errors.Is(err, ErrSignCountRegression) || errors.Is(err, errInvalid) ||
		errors.Is(err, ErrConflict) {
		return err
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// SetFlag creates or replaces the user's flag.
func (b *Bolt) SetFlag(ctx context.Context, f Flag) error {
	if err := validateFlag(f); err != nil {
		return err
	}
	return b.update(ctx, "set flag", func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketFlags), []byte(f.UserID), f)
	})
}

// ClearFlag removes the user's flag.
func (b *Bolt) ClearFlag(ctx context.Context, userID string) error {
	return b.update(ctx, "clear flag", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFlags).Delete([]byte(userID))
	})
}

// GetFlag returns the user's unexpired flag or ErrNotFound.
func (b *Bolt) GetFlag(ctx context.Context, userID string) (Flag, error) {
	var f Flag
	err := b.view(ctx, "get flag", func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketFlags), []byte(userID), &f)
		if err == nil && (!found || expired(f.ExpiresAt, b.cfg.Now())) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Flag{}, err
	}
	return f, nil
}
