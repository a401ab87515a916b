package config

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"ztproxy/authn"
	"ztproxy/store"
)

// TestSessionStoreRevokesLocallyWhenTheStoreFails: issue 22.6, a sign-out
// the store could not record was not enforced on this replica either. With
// the store failing (a closed bbolt file), RevokeSession reports a pending
// revocation and the session is refused here at once, without asking the
// store; a store that works again gets the write.
func TestSessionStoreRevokesLocallyWhenTheStoreFails(t *testing.T) {
	dir := t.TempDir()
	b, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := store.SessionRecord{ID: "s1", UserID: "https://idp#alice", ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.PutSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	b.Close() // the outage
	pending, err := store.OpenPendingRevocations(store.PendingRevocationsConfig{Store: b, JournalPath: filepath.Join(dir, "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	sessions := SessionStore(b, time.Minute, pending)

	err = sessions.RevokeSession(ctx, "s1", time.Now())
	if !errors.Is(err, authn.ErrRevocationPending) {
		t.Fatalf("RevokeSession during the outage: %v", err)
	}
	if revoked, err := sessions.IsRevoked(ctx, "s1"); err != nil || !revoked {
		t.Fatalf("IsRevoked right after: %v, %v", revoked, err)
	}
	if err := sessions.UpdateSessionTokens(ctx, "s1", "rt", "id", time.Now()); !errors.Is(err, authn.ErrSessionRevoked) {
		t.Fatalf("refresh of a pending-revoked session: %v", err)
	}
	if _, err := sessions.IsRevoked(ctx, "s2"); err == nil {
		t.Fatal("another session's check did not fail during the outage")
	}
	if err := sessions.SaveSession(ctx, authn.SessionRecord{ID: "s3", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("SaveSession succeeded on a closed store")
	}

	// Without a pending queue the failure is reported as is.
	plain := SessionStore(b, time.Minute, nil)
	if err := plain.RevokeSession(ctx, "s1", time.Now()); err == nil || errors.Is(err, authn.ErrRevocationPending) {
		t.Fatalf("RevokeSession without a queue: %v", err)
	}
}

func TestRevocationJournalDefault(t *testing.T) {
	f := DefaultFile()
	f.BaseDir = t.TempDir()
	f.Store.Backend, f.Store.Endpoint = "dynamodb", "http://127.0.0.1:8000"
	c := newCollector()
	f.checkStore(c)
	if want := filepath.Join(f.BaseDir, DefaultRevocationJournal); f.Store.RevocationJournal != want {
		t.Errorf("journal %q, want %q", f.Store.RevocationJournal, want)
	}
	f = DefaultFile()
	f.BaseDir = t.TempDir()
	f.Store.RevocationJournal = "missing/dir/j.db"
	c = newCollector()
	f.checkStore(c)
	if c.err() == nil {
		t.Error("a journal in a missing directory was accepted")
	}
}
