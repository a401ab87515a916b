package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltProbeTimeout is how long ProbeBolt waits for the file lock. A
// running ztproxy holds it for as long as it runs, so waiting longer
// proves nothing more.
const boltProbeTimeout = 200 * time.Millisecond

// ProbeBolt checks that the existing, non-empty file at path is an embedded
// store OpenBolt can open, without taking it over: it opens the file
// read-only (a shared lock) for a moment. held reports that another
// process has it open now (a running ztproxy), which OpenBolt would wait
// for and then fail on; the file's content is not checked then.
func ProbeBolt(path string) (held bool, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: boltProbeTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: opening %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return false, fmt.Errorf("store: closing %s: %w", path, err)
	}
	return false, nil
}
