package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// Issue 17 (continuous access evaluation): sessions are found by user and
// by IdP session, changes reach every reader of the feed, one-time keys
// refuse a replay, and flags can be listed.
func testSessionIndex(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	mk := func(id, user, sid string) {
		rec := sampleSession(clk, id)
		rec.UserID, rec.SID = user, sid
		if err := s.PutSession(ctx, rec); err != nil {
			t.Fatalf("PutSession %s: %v", id, err)
		}
	}
	mk("a1", "u#alice", "sid-1")
	mk("a2", "u#alice", "sid-2")
	mk("b1", "u#bob", "sid-1") // same sid at the same IdP name: both go
	mk("c1", "u#carol", "")
	if got, _ := s.GetSession(ctx, "a1"); got.SID != "sid-1" {
		t.Errorf("SID not kept: %q", got.SID)
	}
	if err := s.RevokeSession(ctx, "a2", clk.Now()); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, func() bool {
		ids, err := s.RevokeUserSessions(ctx, "u#alice", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return slices.Equal(ids, []string{"a1"}) // a2 was revoked already
	})
	for _, id := range []string{"a1", "a2"} {
		if r, _ := s.IsRevoked(ctx, id); !r {
			t.Errorf("%s not revoked", id)
		}
	}
	if r, _ := s.IsRevoked(ctx, "b1"); r {
		t.Error("bob's session revoked with alice's")
	}
	if ids, err := s.RevokeIdPSessions(ctx, "corp", "sid-1", clk.Now()); err != nil || !slices.Equal(ids, []string{"b1"}) {
		t.Errorf("RevokeIdPSessions = %v, %v; want [b1]", ids, err)
	}
	if ids, err := s.RevokeIdPSessions(ctx, "other", "sid-x", clk.Now()); err != nil || len(ids) != 0 {
		t.Errorf("unknown sid = %v, %v", ids, err)
	}
	if r, _ := s.IsRevoked(ctx, "c1"); r {
		t.Error("carol's session revoked")
	}
	if _, err := s.RevokeUserSessions(ctx, "", clk.Now()); err == nil {
		t.Error("empty user accepted")
	}
}

// waitIndexed retries a check against an eventually consistent index.
func waitIndexed(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("index never showed the sessions")
}

func testChangeFeed(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	start := clk.Now()
	for _, c := range []Change{
		{Kind: ChangeFlag, UserID: "u#alice"},
		{Kind: ChangeSessions, UserID: "u#bob", SessionIDs: []string{"s1", "s2"}},
		{Kind: ChangeDevice, DeviceID: "dev-1"},
	} {
		if err := s.PublishChange(ctx, c); err != nil {
			t.Fatalf("PublishChange: %v", err)
		}
		clk.Advance(time.Millisecond)
	}
	for _, bad := range []Change{{Kind: "nope"}, {Kind: ChangeSessions}, {Kind: ChangeFlag}} {
		if err := s.PublishChange(ctx, bad); err == nil {
			t.Errorf("PublishChange(%+v) accepted", bad)
		}
	}
	got, err := s.ChangesSince(ctx, start)
	if err != nil || len(got) != 3 {
		t.Fatalf("ChangesSince = %v, %v; want 3", got, err)
	}
	if got[0].Kind != ChangeFlag || got[1].SessionIDs[1] != "s2" || got[2].DeviceID != "dev-1" || got[0].Seq >= got[1].Seq {
		t.Errorf("feed order or content wrong: %+v", got)
	}
	if later, _ := s.ChangesSince(ctx, clk.Now()); len(later) != 0 {
		t.Errorf("ChangesSince(now) = %v, want none", later)
	}
}

func testOnce(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	if err := s.ClaimOnce(ctx, "iss jti-1", clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimOnce(ctx, "iss jti-1", clk.Now().Add(time.Minute)); !errors.Is(err, ErrExists) {
		t.Errorf("replay = %v, want ErrExists", err)
	}
	clk.Advance(2 * time.Minute)
	if err := s.ClaimOnce(ctx, "iss jti-1", clk.Now().Add(time.Minute)); err != nil {
		t.Errorf("expired key not reusable: %v", err)
	}
	if err := s.ClaimOnce(ctx, "", clk.Now()); err == nil {
		t.Error("empty key accepted")
	}
}

func testListFlags(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	_ = s.SetFlag(ctx, Flag{UserID: "u#a", Level: FlagCompromised, Reason: "r"})
	_ = s.SetFlag(ctx, Flag{UserID: "u#b", Level: FlagWatch, ExpiresAt: clk.Now().Add(time.Minute)})
	_ = s.SetFlag(ctx, Flag{UserID: "u#c", Level: FlagWatch, ExpiresAt: clk.Now().Add(time.Second)})
	clk.Advance(2 * time.Second)
	flags, err := s.ListFlags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, f := range flags {
		users = append(users, f.UserID)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"u#a", "u#b"}) {
		t.Errorf("ListFlags users = %v", users)
	}
}
