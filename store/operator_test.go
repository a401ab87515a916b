//go:build unix

package store

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestOperatorSocket: issue 15.5/15.12, the operator's commands reach the
// embedded store of a running proxy through its socket, with the same
// answers as the store itself, and each change is reported so the proxy
// applies it at once.
func TestOperatorSocket(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	b, err := OpenBolt(BoltConfig{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sock := OperatorSocketPath(db)
	// A socket file a dead proxy left behind is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	var mu sync.Mutex
	var changed []string
	srv, err := ServeOperator(sock, b, func(what, u string) { mu.Lock(); changed = append(changed, what+" "+u); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v: mode %v", err, fi.Mode())
	}
	ctx := context.Background()
	c, err := DialOperator(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const alice = "https://idp#alice"
	if _, err := c.GetFlag(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetFlag before = %v, want ErrNotFound", err)
	}
	flag := Flag{UserID: alice, Level: FlagCompromised, Reason: "test", SetBy: "op", SetAt: time.Now().UTC().Truncate(time.Second)}
	if err := c.SetFlag(ctx, flag); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetFlag(ctx, alice); err != nil || got.Level != FlagCompromised || !got.SetAt.Equal(flag.SetAt) {
		t.Fatalf("flag in the store = %+v, %v", got, err)
	}
	if err := c.SetFlag(ctx, Flag{UserID: alice, Level: "bogus"}); !errors.Is(err, errInvalid) {
		t.Fatalf("invalid flag = %v, want errInvalid", err)
	}
	if err := b.PutCredential(ctx, Credential{UserID: alice, ID: []byte{1, 2}, PublicKey: []byte{3}, Name: "key", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if cs, err := c.ListCredentials(ctx, alice); err != nil || len(cs) != 1 || cs[0].Name != "key" {
		t.Fatalf("ListCredentials = %+v, %v", cs, err)
	}
	if err := c.DeleteCredential(ctx, alice, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCredential(ctx, alice, []byte{1, 2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if err := b.ApplyObservation(ctx, Observation{UserID: alice, Requests: 3, Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.GetProfile(ctx, alice); err != nil || p.RequestCount != 3 {
		t.Fatalf("GetProfile = %+v, %v", p, err)
	}
	if ids, err := c.FindUsersByEmail(ctx, "alice@example.com"); err != nil || len(ids) != 1 || ids[0] != alice {
		t.Fatalf("FindUsersByEmail = %v, %v", ids, err)
	}
	if err := c.ClearFlag(ctx, alice); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := []string{"flag set " + alice, "security key removed " + alice, "flag cleared " + alice}
	if !slices.Equal(changed, want) {
		t.Errorf("changes reported: %q, want %q", changed, want)
	}
	mu.Unlock()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
	if _, err := DialOperator(ctx, sock); !errors.Is(err, ErrNoOperatorSocket) {
		t.Fatalf("dial after close = %v", err)
	}
}

// TestOperatorSocketRefusesNonSocket: a regular file where the socket
// goes is never replaced.
func TestOperatorSocketRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db.sock")
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServeOperator(path, nil, nil); err == nil {
		t.Fatal("a regular file was replaced by the socket")
	}
	if data, _ := os.ReadFile(path); string(data) != "data" {
		t.Fatal("the file changed")
	}
}

// TestOperatorSocketDevices: `ztproxy devices` could not run while serve
// held the embedded store; the device inventory now goes through the
// operator socket with the store's own answers (the store contract runs
// through the client: ErrExists, ErrConflict, ErrNotFound, invalid
// records), and every change is reported with the device id so the proxy
// drops its cached copy at once.
func TestOperatorSocketDevices(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(BoltConfig{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	changed := map[string]int{}
	srv, err := ServeOperator(OperatorSocketPath(db), b, func(what, id string) {
		mu.Lock()
		defer mu.Unlock()
		if what == DeviceChanged {
			changed[id]++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := DialOperator(context.Background(), OperatorSocketPath(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testDevices(t, c)
	mu.Lock()
	defer mu.Unlock()
	if changed["d1"] == 0 {
		t.Errorf("device changes reported: %v, want d1 among them", changed)
	}
}
