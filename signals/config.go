package signals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"ztproxy/authn"
	"ztproxy/store"
)

// Transmitter is one configured SET transmitter.
type Transmitter struct {
	// Name labels the transmitter in logs, metrics and flag reasons.
	Name string
	// Issuer is the SET iss, compared exactly.
	Issuer string
	// JWKSURL is where its signing keys are (fetched through the hardened
	// IdP client: no redirects, bounded bodies).
	JWKSURL string
	// Audience is the aud SETs must carry (usually the proxy's
	// external URL).
	Audience string
	// IdP names the configured IdP whose session ids (sid) an opaque
	// session subject refers to; "" when none.
	IdP string
	// Algs are the accepted signature algorithms (default RS256, ES256).
	Algs []string
}

// Sessions is what the receiver needs to end sessions (authn's session
// store adapter: it refuses them on this replica at once and tells the
// others) and to remember jtis across replicas.
type Sessions = authn.SessionRevoker

// Flags is what the receiver needs of the store for flags: set, clear and
// read them, tell the replicas, and find users by email.
type Flags interface {
	store.FlagStore
	store.ChangePublisher
	FindUsersByEmail(ctx context.Context, email string) ([]string, error)
}

// Devices marks devices (non-)compliant; the device inventory.
type Devices interface {
	SetCompliance(ctx context.Context, id string, compliant bool, source string) error
}

// Config configures a Receiver.
type Config struct {
	Transmitters []Transmitter
	Sessions     Sessions
	Flags        Flags
	// Devices is nil without a device inventory; device events are then
	// acknowledged and logged only.
	Devices    Devices
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// OnEvent, when set, counts events by result (applied, ignored,
	// rejected).
	OnEvent func(result string)
}

func (c *Config) checkAndSetDefaults() error {
	var errs []error
	if len(c.Transmitters) == 0 {
		errs = append(errs, errors.New("no transmitters"))
	}
	seen := map[string]bool{}
	for i, t := range c.Transmitters {
		if t.Name == "" || t.Issuer == "" || t.JWKSURL == "" || t.Audience == "" {
			errs = append(errs, fmt.Errorf("transmitters[%d]: name, issuer, jwks_url and audience are required", i))
		}
		if seen[t.Issuer] {
			errs = append(errs, fmt.Errorf("transmitters[%d]: issuer %q is configured twice", i, t.Issuer))
		}
		seen[t.Issuer] = true
		if len(t.Algs) == 0 {
			c.Transmitters[i].Algs = []string{"RS256", "ES256"}
		}
	}
	if c.Sessions == nil || c.Flags == nil {
		errs = append(errs, errors.New("sessions and flags are required"))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = authn.NewIdPHTTPClient(nil)
	}
	return errors.Join(errs...)
}
