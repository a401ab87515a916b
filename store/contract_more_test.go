package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func testCredentials(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	const user = "https://idp.example#carol"
	if list, err := s.ListCredentials(ctx, user); err != nil || len(list) != 0 {
		t.Errorf("ListCredentials(none) = %v, %v", list, err)
	}
	a := Credential{
		UserID: user, ID: []byte{0xde, 0xad, 0x00, 0x01}, PublicKey: []byte("cose-key-a"), SignCount: 0,
		AAGUID: bytes.Repeat([]byte{7}, 16), Transports: []string{"usb", "nfc"}, Name: "YubiKey", CreatedAt: clk.Now(),
	}
	b := Credential{UserID: user, ID: []byte("cred-b"), PublicKey: []byte("cose-key-b"), SignCount: 10, Name: "laptop", CreatedAt: clk.Now().Add(time.Second)}
	other := Credential{UserID: user + "x", ID: []byte("cred-b"), PublicKey: []byte("k"), CreatedAt: clk.Now()}
	for _, c := range []Credential{a, b, other} {
		if err := s.PutCredential(ctx, c); err != nil {
			t.Fatalf("PutCredential(%s): %v", c.Name, err)
		}
	}
	if err := s.PutCredential(ctx, a); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate PutCredential = %v, want ErrExists", err)
	}
	list, err := s.ListCredentials(ctx, user)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListCredentials = %d items, %v; want 2", len(list), err)
	}
	got := list[0]
	if !bytes.Equal(got.ID, a.ID) || !bytes.Equal(got.PublicKey, a.PublicKey) || !bytes.Equal(got.AAGUID, a.AAGUID) ||
		!slices.Equal(got.Transports, a.Transports) || got.Name != a.Name || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("credential = %+v\nwant %+v", got, a)
	}

	// Counter-less authenticator: 0 → 0 is fine, and so is starting to count.
	if err := s.UpdateSignCount(ctx, user, a.ID, 0); err != nil {
		t.Errorf("UpdateSignCount 0→0: %v", err)
	}
	clk.Advance(time.Minute)
	for _, tc := range []struct {
		id      []byte
		count   uint32
		wantErr error
	}{
		{b.ID, 11, nil},
		{b.ID, 11, ErrSignCountRegression},
		{b.ID, 5, ErrSignCountRegression},
		{b.ID, 0, ErrSignCountRegression},
		{b.ID, 12, nil},
		{[]byte("missing"), 1, ErrNotFound},
	} {
		if err := s.UpdateSignCount(ctx, user, tc.id, tc.count); !errors.Is(err, tc.wantErr) {
			t.Errorf("UpdateSignCount(%s, %d) = %v, want %v", tc.id, tc.count, err, tc.wantErr)
		}
	}
	list, _ = s.ListCredentials(ctx, user)
	if list[1].SignCount != 12 || !list[1].LastUsed.Equal(clk.Now()) {
		t.Errorf("after updates: count %d last used %v; want 12 at %v", list[1].SignCount, list[1].LastUsed, clk.Now())
	}
	if err := s.DeleteCredential(ctx, user, a.ID); err != nil {
		t.Fatalf("DeleteCredential: %v", err)
	}
	if err := s.DeleteCredential(ctx, user, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteCredential = %v, want ErrNotFound", err)
	}
	if list, _ := s.ListCredentials(ctx, user); len(list) != 1 || !bytes.Equal(list[0].ID, b.ID) {
		t.Errorf("after delete: %+v", list)
	}
	if list, _ := s.ListCredentials(ctx, user+"x"); len(list) != 1 {
		t.Errorf("other user's credentials: %d, want 1", len(list))
	}
}

func testProfileMerge(t *testing.T, s Store, clk *fakeClock) {
	ctx := context.Background()
	const user = "https://idp.example#dave"
	if _, err := s.GetProfile(ctx, user); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetProfile(new user) = %v, want ErrNotFound", err)
	}
	t0 := clk.Now()
	first := Observation{
		UserID: user, Networks: map[string]int64{"10.0.0.0/24": t0.Unix()}, UserAgents: map[string]int64{"Firefox/Linux": t0.Unix()},
		Devices: map[string]int64{"fp:abc": t0.Unix()}, Requests: 7, FailedAuth: 1, LastSeen: t0, LastLocation: "Berlin",
	}
	first.HourCounts[10], first.HourCounts[167] = 5, 0.25
	second := Observation{
		UserID: user, Networks: map[string]int64{"192.0.2.0/24": t0.Unix() + 60}, Requests: 3,
		LastSeen: t0.Add(time.Minute), LastLocation: "Paris",
	}
	second.HourCounts[10] = 1.5
	// A late flush from another replica: older last_seen must not win.
	late := Observation{UserID: user, Requests: 2, LastSeen: t0.Add(-time.Minute), LastLocation: "Tokyo"}
	for _, o := range []Observation{first, second, late} {
		if err := s.ApplyObservation(ctx, o); err != nil {
			t.Fatalf("ApplyObservation: %v", err)
		}
	}
	p, err := s.GetProfile(ctx, user)
	if err != nil {
		t.Fatalf("GetProfile: %v", err)
	}
	if p.UserID != user || p.RequestCount != 12 || p.FailedAuth != 1 || p.Version != 3 {
		t.Errorf("counters: user %q requests %d failed %d version %d; want 12, 1, 3", p.UserID, p.RequestCount, p.FailedAuth, p.Version)
	}
	if p.HourHistogram[10] != 6.5 || p.HourHistogram[167] != 0.25 || p.HourHistogram[0] != 0 {
		t.Errorf("histogram[10]=%v [167]=%v [0]=%v; want 6.5, 0.25, 0", p.HourHistogram[10], p.HourHistogram[167], p.HourHistogram[0])
	}
	if len(p.Networks) != 2 || p.Networks["192.0.2.0/24"] != t0.Unix()+60 || p.UserAgents["Firefox/Linux"] != t0.Unix() || p.Devices["fp:abc"] != t0.Unix() {
		t.Errorf("maps: %v %v %v", p.Networks, p.UserAgents, p.Devices)
	}
	if !p.LastSeen.Equal(t0.Add(time.Minute)) || p.LastLocation != "Paris" {
		t.Errorf("last seen %v at %q; want %v at Paris", p.LastSeen, p.LastLocation, t0.Add(time.Minute))
	}
	if err := s.ApplyObservation(ctx, Observation{}); err == nil {
		t.Error("ApplyObservation without a user succeeded")
	}
}

// testProfilePruning expects MaxMapEntries = 5.
func testProfilePruning(t *testing.T, s Store) {
	ctx := context.Background()
	const user = "https://idp.example#erin"
	for i := 1; i <= 8; i++ {
		obs := Observation{UserID: user, Requests: 1, Networks: map[string]int64{fmt.Sprintf("net-%d", i): int64(1000 + i)}}
		if err := s.ApplyObservation(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	// One observation far over the bound at once; net-3 is refreshed.
	big := Observation{UserID: user, UserAgents: map[string]int64{}, Networks: map[string]int64{"net-3": 2000}}
	for i := 0; i < 12; i++ {
		big.UserAgents[fmt.Sprintf("ua-%02d", i)] = int64(500 + i)
	}
	if err := s.ApplyObservation(ctx, big); err != nil {
		t.Fatal(err)
	}
	p, err := s.GetProfile(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	wantNets := map[string]int64{"net-3": 2000, "net-5": 1005, "net-6": 1006, "net-7": 1007, "net-8": 1008}
	if fmt.Sprint(p.Networks) != fmt.Sprint(wantNets) {
		t.Errorf("networks = %v, want %v", p.Networks, wantNets)
	}
	if len(p.UserAgents) != 5 || p.UserAgents["ua-11"] != 511 || p.UserAgents["ua-07"] != 507 {
		t.Errorf("user agents = %v, want ua-07..ua-11", p.UserAgents)
	}
	if p.RequestCount != 8 {
		t.Errorf("requests = %d, want 8", p.RequestCount)
	}
}

// testProfileConcurrent applies 2 × 100 observations concurrently, one
// goroutine per store (two replicas when a and b are separate clients).
func testProfileConcurrent(t *testing.T, a, b Store) {
	ctx := context.Background()
	const user = "https://idp.example#frank"
	base := time.Now().UnixMilli() // Batch: at least the time in ms
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g, s := range []Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				// Each writer numbers its batches, as the risk engine
				// does: a retry of a write DynamoDB applied late (a
				// loaded machine) must not count twice.
				obs := Observation{
					UserID: user, Requests: 1, FailedAuth: int64(i % 2), Writer: fmt.Sprintf("writer%d", g), Batch: base + int64(i),
					Networks: map[string]int64{fmt.Sprintf("10.%d.%d.0/24", g, i%20): int64(1_700_000_000 + i)},
				}
				obs.HourCounts[(g*7+i)%168] = 1
				if err := s.ApplyObservation(ctx, obs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ApplyObservation: %v", err)
	}
	p, err := a.GetProfile(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var hours float64
	for _, c := range p.HourHistogram {
		hours += c
	}
	if p.RequestCount != 200 || p.FailedAuth != 100 || p.Version != 200 || hours != 200 {
		t.Errorf("requests %d failed %d version %d hours %v; want 200, 100, 200, 200", p.RequestCount, p.FailedAuth, p.Version, hours)
	}
	if len(p.Networks) != 40 {
		t.Errorf("networks: %d, want 40 (no lost keys)", len(p.Networks))
	}
	for g := 0; g < 2; g++ {
		for i := 80; i < 100; i++ {
			k := fmt.Sprintf("10.%d.%d.0/24", g, i%20)
			if _, ok := p.Networks[k]; !ok {
				t.Errorf("network %s lost", k)
			}
		}
	}
}
