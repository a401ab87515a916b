package devices_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"ztproxy/devices"
	"ztproxy/identity"
)

// Issue 17: a revocation, an owner's removal or a managed change reached
// other replicas only after devices.cache_ttl. The inventory now
// announces each (the change feed in production; here a replica's Forget
// stands for the feed), so replica B refuses a revoked device at once,
// while reports and refused changes announce nothing.
func TestAnnounceTellsReplicas(t *testing.T) {
	var mu sync.Mutex
	var announced []string
	var other *devices.Inventory
	var fail bool
	e := newEnv(t, func(c *devices.Config) {
		c.Announce = func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			announced = append(announced, id)
			if fail {
				return errors.New("feed down")
			}
			other.Forget(id)
			return nil
		}
	})
	other = e.replica(t)
	ctx := context.Background()
	issued, cert := e.enroll(t, e.alice())
	id, dev := issued.Record.ID, presented(cert)
	if d := other.DeviceFacts(ctx, dev); !d.Enrolled || d.Managed {
		t.Fatalf("replica B before: %+v", d)
	}
	if _, err := e.inv.SetManaged(ctx, id, true, devices.SourceOperator); err != nil {
		t.Fatal(err)
	}
	if d := other.DeviceFacts(ctx, dev); !d.Managed {
		t.Error("replica B did not see the managed change at once")
	}
	if _, err := e.inv.Report(ctx, dev, []byte(`{"facts":{"os":"debian"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.inv.Remove(ctx, "https://idp.example#bob", id); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("bob removing alice's device = %v", err)
	}
	if _, err := e.inv.Revoke(ctx, id, identity.DeviceLost, "operator:test", "left in a taxi"); err != nil {
		t.Fatal(err)
	}
	if d := other.DeviceFacts(ctx, dev); !d.Refused() {
		t.Errorf("replica B admits the revoked device within its cache TTL: %+v", d)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := e.inv.Remove(ctx, "https://idp.example#alice", id); err != nil {
		t.Fatalf("a removal whose announcement failed = %v, want it stored", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{id, id, id}; !slices.Equal(announced, want) {
		t.Errorf("announced %v, want %v (set-managed, revoke, remove; not the report or bob's refused removal)", announced, want)
	}
	if !strings.Contains(e.log.String(), "not announced") {
		t.Errorf("a failed announcement is not logged: %s", e.log.String())
	}
}
