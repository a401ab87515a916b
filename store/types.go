package store

import (
	"context"
	"errors"
	"time"
)

// Errors that callers must act on. Every other error is wrapped with a short
// "store: …" prefix; use IsThrottle to recognise DynamoDB throttling.
var (
	// ErrNotFound reports a record that does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports a create of a record whose key is already taken.
	ErrExists = errors.New("store: already exists")
	// ErrRevoked reports a write to a session that has been revoked.
	ErrRevoked = errors.New("store: session revoked")
	// ErrSignCountRegression reports a WebAuthn signature counter that did
	// not increase, a sign of a cloned authenticator.
	ErrSignCountRegression = errors.New("store: webauthn sign count did not increase")
	// ErrConflict reports a conditional update whose record changed since
	// it was read (another replica wrote first).
	ErrConflict = errors.New("store: record changed concurrently")
)

// Sealer encrypts sensitive fields (refresh tokens) before they are written
// and decrypts them after they are read. It MUST be set in production; with
// a nil Sealer refresh tokens are stored as plaintext, which is only fit for
// tests and local demos.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(ciphertext []byte) ([]byte, error)
}

// SessionRecord is the server-side half of a browser session. RefreshToken is
// sensitive: it is sealed at rest and must never be logged.
type SessionRecord struct {
	ID, UserID, IdP string
	// SID is the IdP's session id (the ID token's "sid" claim), by which
	// a back-channel logout names the sessions to end; "" when the IdP
	// sent none.
	SID          string
	RefreshToken string
	// IDToken is kept for id_token_hint at RP-initiated logout.
	IDToken     string
	TokenExpiry time.Time
	// ExpiresAt ends the session; the record is invisible afterwards and
	// DynamoDB TTL deletes it eventually.
	ExpiresAt time.Time
	Revoked   bool
	RevokedAt time.Time
}

// Profile is a user's behavioural profile as the risk engine reads it.
// The map values are the unix second at which a key was last seen.
type Profile struct {
	UserID     string
	Networks   map[string]int64
	UserAgents map[string]int64
	Devices    map[string]int64
	// HourHistogram is indexed by hour of week (0 = Sunday 00:00). The store
	// only adds increments; decay is the caller's (see Observation).
	HourHistogram [168]float64
	RequestCount  int64
	FailedAuth    int64
	LastSeen      time.Time
	LastLocation  string
	// Version counts the observations applied; it changes on every write.
	Version int64
	// Email is the user's verified email address as last seen, so that
	// operators can name the user by it (FindUsersByEmail).
	Email string
}

// Observation is what one replica learned about a user since its last flush.
// ApplyObservation merges it into the stored profile: counters and histogram
// buckets are added, map entries are set, so writes from several replicas
// commute. A caller that wants a decayed histogram can pre-scale HourCounts
// (forward decay: weight increments by 2^(t/halfLife) and divide on read),
// which keeps the merge a pure addition.
type Observation struct {
	UserID                        string
	Networks, UserAgents, Devices map[string]int64
	HourCounts                    [168]float64
	Requests, FailedAuth          int64
	LastSeen                      time.Time
	LastLocation                  string
	// Writer and Batch make the write idempotent: Writer names the
	// process that sends it (random per process, [0-9a-z]{1,32}) and Batch
	// numbers its observations for this user: strictly increasing, and at
	// least the unix time in milliseconds when the batch was made (the
	// DynamoDB store forgets a writer a week after its last batch). A write
	// whose outcome the caller never learned (a timeout while the store
	// applied it late) is resent with the same Writer and Batch and applied
	// at most once. Zero Batch means no deduplication. The embedded store,
	// whose writes are never ambiguous, ignores both.
	Writer string
	Batch  int64
	// Email replaces the stored email address when not empty.
	Email string
}

// Flag levels an operator can set.
const (
	FlagCompromised = "compromised"
	FlagWatch       = "watch"
	// FlagStepUp asks the principal to authenticate again (step-up) at
	// the next request unless it authenticated after SetAt: a security
	// event (assurance level or credential change) says the current
	// authentication no longer counts. The risk engine scores it as
	// watch.
	FlagStepUp = "step_up"
)

// Flag is an operator's mark on a user that raises the user's risk.
type Flag struct {
	UserID, Level, Reason, SetBy string
	SetAt                        time.Time
	// ExpiresAt is optional; a zero ExpiresAt means until cleared.
	ExpiresAt time.Time
}

// Credential is a stored WebAuthn credential.
type Credential struct {
	UserID     string
	ID         []byte
	PublicKey  []byte
	SignCount  uint32
	AAGUID     []byte
	Transports []string
	Name       string
	CreatedAt  time.Time
	LastUsed   time.Time
}

// SessionStore keeps server-side browser sessions shared by all replicas.
type SessionStore interface {
	// PutSession creates a session; ErrExists if the id is taken.
	PutSession(ctx context.Context, rec SessionRecord) error
	// GetSession returns the session, revoked or not; ErrNotFound when it
	// does not exist or has expired.
	GetSession(ctx context.Context, id string) (SessionRecord, error)
	// RevokeSession marks the session revoked; revoking twice keeps the
	// first time. ErrNotFound when it does not exist.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// UpdateSessionTokens stores refreshed tokens; an empty refreshToken or
	// idToken keeps the stored one. ErrNotFound or ErrRevoked when the
	// session is gone or revoked.
	UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error
	// IsRevoked reports whether a session must be refused: true when it is
	// revoked, expired or unknown. Wrap it in a RevocationCache on the hot
	// path.
	IsRevoked(ctx context.Context, id string) (bool, error)
}

// ProfileStore keeps behavioural profiles.
type ProfileStore interface {
	// GetProfile returns ErrNotFound for a user never observed.
	GetProfile(ctx context.Context, userID string) (Profile, error)
	// ApplyObservation merges obs into the user's profile without losing
	// concurrent merges from other replicas.
	ApplyObservation(ctx context.Context, obs Observation) error
}

// FlagStore keeps operator flags.
type FlagStore interface {
	// SetFlag creates or replaces the user's flag.
	SetFlag(ctx context.Context, f Flag) error
	// ClearFlag removes the user's flag; clearing an absent flag is not an
	// error.
	ClearFlag(ctx context.Context, userID string) error
	// GetFlag returns ErrNotFound when no unexpired flag is set.
	GetFlag(ctx context.Context, userID string) (Flag, error)
}

// CredentialStore keeps WebAuthn credentials.
type CredentialStore interface {
	// PutCredential registers a credential; ErrExists if the user already
	// has one with this id.
	PutCredential(ctx context.Context, c Credential) error
	// ListCredentials returns the user's credentials (none is not an error).
	ListCredentials(ctx context.Context, userID string) ([]Credential, error)
	// DeleteCredential returns ErrNotFound when there is nothing to delete.
	DeleteCredential(ctx context.Context, userID string, id []byte) error
	// UpdateSignCount stores newCount and the time of use. It fails with
	// ErrSignCountRegression unless newCount is greater than the stored
	// count or both are zero (authenticators without a counter).
	UpdateSignCount(ctx context.Context, userID string, id []byte, newCount uint32) error
}

// UserDirectory finds users for operators.
type UserDirectory interface {
	// FindUsersByEmail returns the ids of the users whose profile holds
	// the verified email address email (compared case-insensitively),
	// at most MaxUsersByEmail of them; none is not an error.
	FindUsersByEmail(ctx context.Context, email string) ([]string, error)
}

// MaxUsersByEmail bounds FindUsersByEmail's answer: more users with one
// address than this is a reason to use ids anyway.
const MaxUsersByEmail = 10

// DeviceRecord is one device of the inventory. The store keys it by ID,
// lists it by Owner and compares Version on update; Data is the device
// package's document (fingerprints, status, posture facts), opaque here.
type DeviceRecord struct {
	ID, Owner string
	// Version is 1 after CreateDevice and grows by one on every update.
	Version int64
	Data    []byte
}

// MaxDeviceDataBytes bounds DeviceRecord.Data (a DynamoDB item holds at
// most 400 KB).
const MaxDeviceDataBytes = 128 << 10

// DeviceStore keeps the device inventory.
type DeviceStore interface {
	// CreateDevice stores a new device with version 1; ErrExists if the id
	// is taken.
	CreateDevice(ctx context.Context, d DeviceRecord) error
	// GetDevice returns ErrNotFound for an unknown id. It reads the latest
	// write (a consistent read).
	GetDevice(ctx context.Context, id string) (DeviceRecord, error)
	// UpdateDevice replaces the device if its stored version is d.Version,
	// which then becomes d.Version+1; ErrConflict if it changed meanwhile,
	// ErrNotFound if it does not exist. The owner cannot change.
	UpdateDevice(ctx context.Context, d DeviceRecord) error
	// ListDevices returns the owner's devices (eventually consistent on
	// DynamoDB), or every device when owner is "", ordered by id.
	ListDevices(ctx context.Context, owner string) ([]DeviceRecord, error)
}

// Store is everything ztproxy keeps in shared state.
type Store interface {
	SessionStore
	ProfileStore
	FlagStore
	CredentialStore
	DeviceStore
	SessionIndex
	ChangeFeed
	OnceStore
	FlagLister
	Close() error
}

// DefaultMaxMapEntries bounds each profile map (networks, user agents,
// devices); the least recently seen entries are pruned beyond it.
const DefaultMaxMapEntries = 50
