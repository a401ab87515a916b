package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// testDevices is the device inventory's contract (issue 16): create once,
// consistent reads, version-conditioned updates, listing by owner.
func testDevices(t *testing.T, s DeviceStore) {
	ctx := context.Background()
	alice, bob := "https://idp.example#alice", "https://idp.example#bob"
	d1 := DeviceRecord{ID: "d1", Owner: alice, Data: []byte(`{"v":1}`)}
	if err := s.CreateDevice(ctx, d1); err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	if err := s.CreateDevice(ctx, d1); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateDevice = %v, want ErrExists", err)
	}
	for _, bad := range []DeviceRecord{{ID: "", Owner: alice, Data: []byte("x")}, {ID: "x", Owner: "", Data: []byte("x")}, {ID: "x", Owner: alice}} {
		if err := s.CreateDevice(ctx, bad); err == nil {
			t.Errorf("CreateDevice(%+v) accepted", bad)
		}
	}
	got, err := s.GetDevice(ctx, "d1")
	if err != nil || got.Version != 1 || got.Owner != alice || string(got.Data) != `{"v":1}` {
		t.Fatalf("GetDevice = %+v, %v", got, err)
	}
	if _, err := s.GetDevice(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDevice(unknown) = %v", err)
	}

	got.Data = []byte(`{"v":2}`)
	if err := s.UpdateDevice(ctx, got); err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	// The same version again lost the race: conflict, nothing written.
	stale := got
	stale.Data = []byte(`{"v":"stale"}`)
	if err := s.UpdateDevice(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Errorf("stale UpdateDevice = %v, want ErrConflict", err)
	}
	again, _ := s.GetDevice(ctx, "d1")
	if again.Version != 2 || string(again.Data) != `{"v":2}` {
		t.Errorf("after update: %+v", again)
	}
	stolen := again
	stolen.Owner = bob
	if err := s.UpdateDevice(ctx, stolen); !errors.Is(err, ErrConflict) {
		t.Errorf("UpdateDevice changing the owner = %v, want ErrConflict", err)
	}
	if err := s.UpdateDevice(ctx, DeviceRecord{ID: "gone", Owner: alice, Version: 1, Data: []byte("x")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateDevice(unknown) = %v, want ErrNotFound", err)
	}

	// Concurrent updates from one version: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan int, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := again
			d.Data = []byte(fmt.Sprintf(`{"writer":%d}`, i))
			if s.UpdateDevice(ctx, d) == nil {
				wins <- i
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d concurrent updates won, want 1", n)
	}

	for _, d := range []DeviceRecord{{ID: "d2", Owner: bob, Data: []byte("b")}, {ID: "d0", Owner: alice, Data: []byte("a")}} {
		if err := s.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListDevices(ctx, alice)
	if err != nil || len(list) != 2 || list[0].ID != "d0" || list[1].ID != "d1" {
		t.Errorf("ListDevices(alice) = %+v, %v", list, err)
	}
	all, err := s.ListDevices(ctx, "")
	if err != nil || len(all) != 3 {
		t.Errorf("ListDevices(all) = %d devices, %v", len(all), err)
	}
	if none, err := s.ListDevices(ctx, "https://idp.example#nobody"); err != nil || len(none) != 0 {
		t.Errorf("ListDevices(nobody) = %v, %v", none, err)
	}
}
