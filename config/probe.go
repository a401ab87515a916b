package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"ztproxy/store"
)

// StoreCheck is what CheckStore found out about the store.
type StoreCheck struct {
	// Store stands in for the opened store: it is the real DynamoDB client
	// (building one does no I/O), or for the embedded store a placeholder
	// that fails every call. check-config serves no request, so nothing
	// calls it; it only lets the components that need a store be built.
	Store store.Store
	// Held reports that another process holds the embedded store's file
	// now (a running ztproxy): serve would wait for it and fail.
	Held bool
}

// CheckStore is check-config's OpenStore: it builds what OpenStore builds
// and runs the checks OpenStore would fail on, but takes nothing over. For
// the embedded store it checks that the file can be created (its
// directory is writable) or opened read-write, and that an existing file
// is a bbolt store, without holding its lock for more than a moment. What
// it cannot prove (that the lock is free when serve starts; that DynamoDB
// is reachable, its tables exist and the credentials may use them) is for
// the caller to print as notes. The caller closes Store.
func CheckStore(ctx context.Context, f *File) (StoreCheck, error) {
	if f.Store.Backend == "dynamodb" {
		st, err := OpenStore(ctx, f, nil)
		return StoreCheck{Store: st}, err
	}
	if _, err := storeSealer(f); err != nil {
		return StoreCheck{}, err
	}
	held, err := probeEmbeddedStore(f.Store.Path)
	if err != nil {
		return StoreCheck{}, err
	}
	return StoreCheck{Store: unopenedStore{}, Held: held}, nil
}

// probeEmbeddedStore checks what store.OpenBolt needs of path.
func probeEmbeddedStore(path string) (held bool, err error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, checkDirWritable(filepath.Dir(path))
	case err != nil:
		return false, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	case !info.Mode().IsRegular():
		return false, fmt.Errorf("%s: not a regular file", path)
	}
	if err := checkOpenable(path, os.O_RDWR); err != nil {
		return false, err
	}
	if info.Size() == 0 {
		return false, nil // OpenBolt initialises an empty file
	}
	return store.ProbeBolt(path)
}

// ProbeAppendFile checks that name can be opened for appending, as the
// audit log is, without creating it: an existing file is opened for
// writing (nothing is written) and closed; otherwise its directory must
// be writable.
func ProbeAppendFile(name string) error {
	info, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return checkDirWritable(filepath.Dir(name))
	case err != nil:
		return fmt.Errorf("%s: %w", name, unwrapPathError(err))
	case info.IsDir():
		return fmt.Errorf("%s: is a directory", name)
	}
	return checkOpenable(name, os.O_WRONLY|os.O_APPEND)
}

// checkOpenable opens name with flag (never O_CREATE) and closes it.
func checkOpenable(name string, flag int) error {
	file, err := os.OpenFile(name, flag, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", name, unwrapPathError(err))
	}
	return file.Close()
}

// checkDirWritable checks that a file can be created in dir by creating
// and removing an empty one: permission bits alone do not tell (ACLs,
// read-only mounts, root).
func checkDirWritable(dir string) error {
	probe, err := os.CreateTemp(dir, ".ztproxy-check-*")
	if err != nil {
		return fmt.Errorf("%s: cannot create files there: %w", dir, unwrapPathError(err))
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// errUnopened is what the check-config stand-in store answers.
var errUnopened = errors.New("store: not opened (check-config)")

// unopenedStore stands in for the embedded store in check-config, which
// must not take the store's lock from a running ztproxy. Every call fails.
type unopenedStore struct{}

var _ store.Store = unopenedStore{}

func (unopenedStore) PutSession(context.Context, store.SessionRecord) error { return errUnopened }
func (unopenedStore) GetSession(context.Context, string) (store.SessionRecord, error) {
	return store.SessionRecord{}, errUnopened
}
func (unopenedStore) RevokeSession(context.Context, string, time.Time) error { return errUnopened }
func (unopenedStore) UpdateSessionTokens(context.Context, string, string, string, time.Time) error {
	return errUnopened
}
func (unopenedStore) IsRevoked(context.Context, string) (bool, error) { return true, errUnopened }
func (unopenedStore) GetProfile(context.Context, string) (store.Profile, error) {
	return store.Profile{}, errUnopened
}
func (unopenedStore) ApplyObservation(context.Context, store.Observation) error { return errUnopened }
func (unopenedStore) SetFlag(context.Context, store.Flag) error                 { return errUnopened }
func (unopenedStore) ClearFlag(context.Context, string) error                   { return errUnopened }
func (unopenedStore) GetFlag(context.Context, string) (store.Flag, error) {
	return store.Flag{}, errUnopened
}
func (unopenedStore) PutCredential(context.Context, store.Credential) error { return errUnopened }
func (unopenedStore) ListCredentials(context.Context, string) ([]store.Credential, error) {
	return nil, errUnopened
}
func (unopenedStore) DeleteCredential(context.Context, string, []byte) error { return errUnopened }
func (unopenedStore) UpdateSignCount(context.Context, string, []byte, uint32) error {
	return errUnopened
}
func (unopenedStore) CreateDevice(context.Context, store.DeviceRecord) error { return errUnopened }
func (unopenedStore) GetDevice(context.Context, string) (store.DeviceRecord, error) {
	return store.DeviceRecord{}, errUnopened
}
func (unopenedStore) UpdateDevice(context.Context, store.DeviceRecord) error { return errUnopened }
func (unopenedStore) ListDevices(context.Context, string) ([]store.DeviceRecord, error) {
	return nil, errUnopened
}
func (unopenedStore) RevokeUserSessions(context.Context, string, time.Time) ([]string, error) {
	return nil, errUnopened
}
func (unopenedStore) RevokeIdPSessions(context.Context, string, string, time.Time) ([]string, error) {
	return nil, errUnopened
}
func (unopenedStore) PublishChange(context.Context, store.Change) error { return errUnopened }
func (unopenedStore) ChangesSince(context.Context, time.Time) ([]store.Change, error) {
	return nil, errUnopened
}
func (unopenedStore) ClaimOnce(context.Context, string, time.Time) error { return errUnopened }
func (unopenedStore) ListFlags(context.Context) ([]store.Flag, error)    { return nil, errUnopened }
func (unopenedStore) Close() error                                       { return nil }

// CheckRevocationJournal checks what OpenPendingRevocations needs of the
// revocation journal, without taking it over. held reports that another
// process has it open now; "" means no journal is configured.
func CheckRevocationJournal(f *File) (held bool, err error) {
	if f.Store.RevocationJournal == "" {
		return false, nil
	}
	return probeEmbeddedStore(f.Store.RevocationJournal)
}
