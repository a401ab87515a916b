package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestBolt(t *testing.T, env contractEnv) *Bolt {
	t.Helper()
	b, err := OpenBolt(BoltConfig{
		Path: filepath.Join(t.TempDir(), "state.db"), Now: env.Clock.Now,
		Sealer: env.Sealer, MaxMapEntries: env.MaxMapEntries, PurgeInterval: -1,
	})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBoltContract(t *testing.T) {
	runContract(t, func(t *testing.T, env contractEnv) Store { return openTestBolt(t, env) })
}

func TestBoltFileModeAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := newFakeClock()
	b, err := OpenBolt(BoltConfig{Path: path, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutSession(context.Background(), sampleSession(clk, "s1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err = OpenBolt(BoltConfig{Path: path, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.GetSession(context.Background(), "s1"); err != nil {
		t.Errorf("session lost across reopen: %v", err)
	}
}

// TestBoltRefreshTokenSealed reads the raw bucket: the refresh token must not
// be there in plaintext when a Sealer is configured.
func TestBoltRefreshTokenSealed(t *testing.T) {
	clk := newFakeClock()
	b := openTestBolt(t, contractEnv{Clock: clk, Sealer: newTestSealer(t)})
	ctx := context.Background()
	rec := sampleSession(clk, "sealed")
	if err := b.PutSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateSessionTokens(ctx, "sealed", "rt-rotated-secret", "", rec.TokenExpiry); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	_ = b.db.View(func(tx *bolt.Tx) error {
		raw = append(raw, tx.Bucket(bucketSessions).Get([]byte("sealed"))...)
		return nil
	})
	if len(raw) == 0 || bytes.Contains(raw, []byte("rt-rotated-secret")) || bytes.Contains(raw, []byte("rt-secret")) {
		t.Errorf("raw record holds the refresh token in plaintext: %s", raw)
	}
	got, err := b.GetSession(ctx, "sealed")
	if err != nil || got.RefreshToken != "rt-rotated-secret" {
		t.Errorf("GetSession = %q, %v; want the opened token", got.RefreshToken, err)
	}
	// A store opened without the sealer must refuse rather than return ciphertext.
	b.cfg.Sealer = nil
	if _, err := b.GetSession(ctx, "sealed"); err == nil {
		t.Error("GetSession without the sealer returned a token")
	}
}

func TestBoltPurgeExpired(t *testing.T) {
	clk := newFakeClock()
	b := openTestBolt(t, contractEnv{Clock: clk})
	ctx := context.Background()
	short := sampleSession(clk, "short")
	short.ExpiresAt = clk.Now().Add(time.Minute)
	_ = b.PutSession(ctx, short)
	_ = b.PutSession(ctx, sampleSession(clk, "long"))
	_ = b.SetFlag(ctx, Flag{UserID: "u", Level: FlagWatch, ExpiresAt: clk.Now().Add(time.Minute)})
	clk.Advance(2 * time.Minute)
	n, err := b.PurgeExpired(ctx)
	if err != nil || n != 2 {
		t.Errorf("PurgeExpired = %d, %v; want 2", n, err)
	}
	if _, err := b.GetSession(ctx, "long"); err != nil {
		t.Errorf("live session purged: %v", err)
	}
}
