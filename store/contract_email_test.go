package store

import (
	"context"
	"slices"
	"testing"
)

// testUsersByEmail: issue 15.14, operators name a user by the verified
// email address the proxy has seen; the address is kept on the profile and
// only replaced by an observation that carries one.
func testUsersByEmail(t *testing.T, s Store) {
	ctx := context.Background()
	dir, ok := s.(UserDirectory)
	if !ok {
		t.Fatalf("%T does not implement UserDirectory", s)
	}
	obs := func(user, email string) {
		t.Helper()
		if err := s.ApplyObservation(ctx, Observation{UserID: user, Requests: 1, Email: email}); err != nil {
			t.Fatal(err)
		}
	}
	obs("https://idp#alice", "alice@example.com")
	obs("https://idp#alice", "") // a later observation without the address keeps it
	obs("https://other#alice", "Alice@Example.com")
	obs("https://idp#bob", "bob@example.com")
	obs("https://idp#carol", "")
	if p, err := s.GetProfile(ctx, "https://idp#alice"); err != nil || p.Email != "alice@example.com" {
		t.Fatalf("profile email = %q, %v", p.Email, err)
	}
	got, err := dir.FindUsersByEmail(ctx, "ALICE@example.com")
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"https://idp#alice", "https://other#alice"}) {
		t.Fatalf("FindUsersByEmail(alice) = %v, %v", got, err)
	}
	if got, err := dir.FindUsersByEmail(ctx, "nobody@example.com"); err != nil || len(got) != 0 {
		t.Fatalf("FindUsersByEmail(nobody) = %v, %v", got, err)
	}
	if got, err := dir.FindUsersByEmail(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("FindUsersByEmail(\"\") = %v, %v (users without an address matched)", got, err)
	}
	obs("https://idp#bob", "robert@example.com")
	if got, _ := dir.FindUsersByEmail(ctx, "bob@example.com"); len(got) != 0 {
		t.Fatalf("a replaced address still finds %v", got)
	}
}
