package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// contractEnv is what a contract test controls in a new store.
type contractEnv struct {
	Clock         *fakeClock
	Sealer        Sealer
	MaxMapEntries int
}

// newStoreFunc opens a fresh, empty store for one subtest.
type newStoreFunc func(t *testing.T, env contractEnv) Store

// runContract runs the behaviour every Store must have, against one
// implementation.
func runContract(t *testing.T, newStore newStoreFunc) {
	open := func(t *testing.T, maxEntries ...int) (Store, *fakeClock) {
		clk := newFakeClock()
		env := contractEnv{Clock: clk, Sealer: newTestSealer(t), MaxMapEntries: 5}
		if len(maxEntries) > 0 {
			env.MaxMapEntries = maxEntries[0]
		}
		return newStore(t, env), clk
	}
	t.Run("Sessions", func(t *testing.T) { s, clk := open(t); testSessions(t, s, clk) })
	t.Run("SessionExpiry", func(t *testing.T) { s, clk := open(t); testSessionExpiry(t, s, clk) })
	t.Run("Flags", func(t *testing.T) { s, clk := open(t); testFlags(t, s, clk) })
	t.Run("Credentials", func(t *testing.T) { s, clk := open(t); testCredentials(t, s, clk) })
	t.Run("ProfileMerge", func(t *testing.T) { s, clk := open(t); testProfileMerge(t, s, clk) })
	t.Run("ProfilePruning", func(t *testing.T) { s, _ := open(t); testProfilePruning(t, s) })
	t.Run("ProfileConcurrent", func(t *testing.T) { s, _ := open(t, DefaultMaxMapEntries); testProfileConcurrent(t, s, s) })
	t.Run("UsersByEmail", func(t *testing.T) { s, _ := open(t); testUsersByEmail(t, s) })
	t.Run("Devices", func(t *testing.T) { s, _ := open(t); testDevices(t, s) })
	t.Run("SessionIndex", func(t *testing.T) { s, clk := open(t); testSessionIndex(t, s, clk) })
	t.Run("ChangeFeed", func(t *testing.T) { s, clk := open(t); testChangeFeed(t, s, clk) })
	t.Run("Once", func(t *testing.T) { s, clk := open(t); testOnce(t, s, clk) })
	t.Run("ListFlags", func(t *testing.T) { s, clk := open(t); testListFlags(t, s, clk) })
}

func sampleSession(clk *fakeClock, id string) SessionRecord {
	return SessionRecord{
		ID: id, UserID: "https://idp.example#alice", IdP: "corp",
		RefreshToken: "rt-secret-" + id, IDToken: "eyJ.id." + id,
		TokenExpiry: clk.Now().Add(5 * time.Minute), ExpiresAt: clk.Now().Add(8 * time.Hour),
	}
}

func testSessions(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	rec := sampleSession(clk, "s1")
	if err := s.PutSession(ctx, rec); err != nil {
		t.Fatalf("PutSession: %v", err)
	}
	if err := s.PutSession(ctx, rec); !errors.Is(err, ErrExists) {
		t.Errorf("second PutSession = %v, want ErrExists", err)
	}
	got, err := s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	assertSession(t, got, rec)
	if revoked, err := s.IsRevoked(ctx, "s1"); err != nil || revoked {
		t.Errorf("IsRevoked(live) = %v, %v; want false", revoked, err)
	}
	if revoked, err := s.IsRevoked(ctx, "nope"); err != nil || !revoked {
		t.Errorf("IsRevoked(unknown) = %v, %v; want true", revoked, err)
	}

	// Refresh: empty values keep what is stored.
	newExpiry := clk.Now().Add(time.Hour)
	if err := s.UpdateSessionTokens(ctx, "s1", "rt-rotated", "", newExpiry); err != nil {
		t.Fatalf("UpdateSessionTokens: %v", err)
	}
	rec.RefreshToken, rec.TokenExpiry = "rt-rotated", newExpiry
	got, _ = s.GetSession(ctx, "s1")
	assertSession(t, got, rec)

	revokedAt := clk.Now().Add(time.Minute)
	if err := s.RevokeSession(ctx, "s1", revokedAt); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if err := s.RevokeSession(ctx, "s1", revokedAt.Add(time.Hour)); err != nil {
		t.Errorf("second RevokeSession: %v", err)
	}
	got, err = s.GetSession(ctx, "s1")
	if err != nil || !got.Revoked || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("after revoke: revoked=%v at=%v err=%v; want true at %v", got.Revoked, got.RevokedAt, err, revokedAt)
	}
	if revoked, err := s.IsRevoked(ctx, "s1"); err != nil || !revoked {
		t.Errorf("IsRevoked(revoked) = %v, %v; want true", revoked, err)
	}
	if err := s.UpdateSessionTokens(ctx, "s1", "rt-after", "x", newExpiry); !errors.Is(err, ErrRevoked) {
		t.Errorf("UpdateSessionTokens after revoke = %v, want ErrRevoked", err)
	}
	if err := s.PutSession(ctx, sampleSession(clk, "s1")); !errors.Is(err, ErrExists) {
		t.Errorf("PutSession over a revoked session = %v, want ErrExists", err)
	}
	for name, err := range map[string]error{
		"GetSession":          func() error { _, err := s.GetSession(ctx, "nope"); return err }(),
		"RevokeSession":       s.RevokeSession(ctx, "nope", clk.Now()),
		"UpdateSessionTokens": s.UpdateSessionTokens(ctx, "nope", "a", "b", newExpiry),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s(unknown) = %v, want ErrNotFound", name, err)
		}
	}
	if err := s.PutSession(ctx, SessionRecord{ID: "x"}); err == nil {
		t.Error("PutSession without user and expiry succeeded")
	}
}

func assertSession(t *testing.T, got, want SessionRecord) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.IdP != want.IdP ||
		got.RefreshToken != want.RefreshToken || got.IDToken != want.IDToken ||
		!got.TokenExpiry.Equal(want.TokenExpiry) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.Revoked != want.Revoked || !got.RevokedAt.Equal(want.RevokedAt) {
		t.Errorf("session = %+v\nwant %+v", got, want)
	}
}

func testSessionExpiry(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	rec := sampleSession(clk, "s-exp")
	rec.ExpiresAt = clk.Now().Add(time.Hour)
	if err := s.PutSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Minute)
	if _, err := s.GetSession(ctx, "s-exp"); err != nil {
		t.Fatalf("GetSession before expiry: %v", err)
	}
	clk.Advance(time.Minute) // exactly at ExpiresAt: expired
	if _, err := s.GetSession(ctx, "s-exp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSession after expiry = %v, want ErrNotFound", err)
	}
	if revoked, err := s.IsRevoked(ctx, "s-exp"); err != nil || !revoked {
		t.Errorf("IsRevoked(expired) = %v, %v; want true", revoked, err)
	}
	if err := s.UpdateSessionTokens(ctx, "s-exp", "a", "b", clk.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateSessionTokens(expired) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeSession(ctx, "s-exp", clk.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeSession(expired) = %v, want ErrNotFound", err)
	}
	// An expired record that TTL has not removed yet does not block its id.
	if err := s.PutSession(ctx, sampleSession(clk, "s-exp")); err != nil {
		t.Errorf("PutSession over an expired record: %v", err)
	}
}

func testFlags(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	const user = "https://idp.example#bob"
	if _, err := s.GetFlag(ctx, user); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFlag(none) = %v, want ErrNotFound", err)
	}
	f := Flag{UserID: user, Level: FlagCompromised, Reason: "GuardDuty finding", SetBy: "soc", SetAt: clk.Now()}
	if err := s.SetFlag(ctx, f); err != nil {
		t.Fatalf("SetFlag: %v", err)
	}
	got, err := s.GetFlag(ctx, user)
	if err != nil || got.Level != f.Level || got.Reason != f.Reason || got.SetBy != f.SetBy || !got.SetAt.Equal(f.SetAt) || !got.ExpiresAt.IsZero() {
		t.Errorf("GetFlag = %+v, %v; want %+v", got, err, f)
	}
	f.Level, f.ExpiresAt = FlagWatch, clk.Now().Add(time.Hour)
	if err := s.SetFlag(ctx, f); err != nil {
		t.Fatalf("SetFlag (replace): %v", err)
	}
	if got, _ := s.GetFlag(ctx, user); got.Level != FlagWatch || !got.ExpiresAt.Equal(f.ExpiresAt) {
		t.Errorf("replaced flag = %+v", got)
	}
	clk.Advance(time.Hour)
	if _, err := s.GetFlag(ctx, user); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFlag(expired) = %v, want ErrNotFound", err)
	}
	f.ExpiresAt = time.Time{}
	_ = s.SetFlag(ctx, f)
	if err := s.ClearFlag(ctx, user); err != nil {
		t.Fatalf("ClearFlag: %v", err)
	}
	if err := s.ClearFlag(ctx, user); err != nil {
		t.Errorf("second ClearFlag: %v", err)
	}
	if _, err := s.GetFlag(ctx, user); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFlag(cleared) = %v, want ErrNotFound", err)
	}
	if err := s.SetFlag(ctx, Flag{UserID: user, Level: "panic"}); err == nil {
		t.Error("SetFlag with an unknown level succeeded")
	}
}
