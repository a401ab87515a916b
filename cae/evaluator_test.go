package cae

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ztproxy/store"
)

// Issue 17: the evaluator keeps the compromised and step-up sets and
// applies the change feed: each change once, whatever the overlap of
// polls; before its first read it refuses to answer.
func TestEvaluatorAppliesFeed(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_ = st.SetFlag(ctx, store.Flag{UserID: "i#mallory", Level: store.FlagCompromised, Reason: "r"})
	_ = st.SetFlag(ctx, store.Flag{UserID: "i#wally", Level: store.FlagWatch, Reason: "w"})
	var sessions [][]string
	var flags []string
	var polls, failures int
	ev, err := New(Config{Store: st, PollInterval: time.Hour,
		OnSessions: func(ids []string) { sessions = append(sessions, ids) },
		OnFlag:     func(u string) { flags = append(flags, u) },
		OnPoll: func(err error, _ int) {
			polls++
			if err != nil {
				failures++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.Compromised("i#mallory"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before Start: %v, want ErrNotReady", err)
	}
	if err := ev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if reason, bad, err := ev.Compromised("i#mallory"); !bad || reason != "r" || err != nil {
		t.Errorf("mallory: %q %v %v", reason, bad, err)
	}
	if _, bad, _ := ev.Compromised("i#wally"); bad {
		t.Error("a watch flag is a hard deny")
	}

	_ = st.PublishChange(ctx, store.Change{Kind: store.ChangeSessions, UserID: "i#alice", SessionIDs: []string{"s1", "s2"}})
	_ = st.SetFlag(ctx, store.Flag{UserID: "i#bob", Level: store.FlagCompromised, Reason: "b"})
	_ = st.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: "i#bob"})
	stepAt := time.Now()
	_ = st.SetFlag(ctx, store.Flag{UserID: "i#carol", Level: store.FlagStepUp, Reason: "c", SetAt: stepAt})
	_ = st.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: "i#carol"})
	ev.Poll(ctx)
	ev.Poll(ctx) // the overlap reads the same changes again
	if len(sessions) != 1 || !slices.Equal(sessions[0], []string{"s1", "s2"}) || !slices.Equal(flags, []string{"i#bob", "i#carol"}) {
		t.Fatalf("applied sessions %v flags %v, want each once", sessions, flags)
	}
	if _, bad, _ := ev.Compromised("i#bob"); !bad {
		t.Error("bob not compromised after the feed")
	}
	if since, ok := ev.StepUpSince("i#carol"); !ok || !since.Equal(stepAt) {
		t.Errorf("carol step-up: %v %v", since, ok)
	}
	if _, bad, _ := ev.Compromised("i#carol"); bad {
		t.Error("a step_up flag is a hard deny")
	}
	_ = st.ClearFlag(ctx, "i#bob")
	_ = st.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: "i#bob"})
	ev.Poll(ctx)
	if _, bad, _ := ev.Compromised("i#bob"); bad {
		t.Error("bob still compromised after the flag was cleared")
	}

	st.Close()
	ev.Poll(ctx)
	if failures != 1 {
		t.Errorf("a closed store: %d failed polls of %d", failures, polls)
	}
	if _, bad, err := ev.Compromised("i#mallory"); !bad || err != nil {
		t.Error("a failed poll forgot the compromised set")
	}
}
