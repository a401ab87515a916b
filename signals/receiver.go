package signals

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ztproxy/authn"
)

// MaxSETBytes bounds one SET (RFC 8935 sets no limit; real SETs are a few
// KiB).
const MaxSETBytes = 64 << 10

// Timing of SETs: iat no more than setSkew in the future and no older
// than maxSETAge (a transmitter retries for a while); the jti is kept that
// long, so a replay is refused on every replica.
const (
	maxSETAge = 24 * time.Hour
	setSkew   = 5 * time.Minute
)

// RFC 8935 §2.4 error codes.
const (
	ErrCodeInvalidRequest  = "invalid_request"
	ErrCodeInvalidKey      = "invalid_key"
	ErrCodeInvalidIssuer   = "invalid_issuer"
	ErrCodeInvalidAudience = "invalid_audience"
)

// Error is a refused SET: the receiver answers 400 with {"err": Code,
// "description": Description} and changes nothing.
type Error struct {
	Code, Description string
	Err               error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "security event refused: " + e.Code + ": " + e.Description + ": " + e.Err.Error()
	}
	return "security event refused: " + e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// SETError returns the RFC 8935 error code and description.
func (e *Error) SETError() (code, description string) { return e.Code, e.Description }

func refuse(code, desc string, err error) error {
	return &Error{Code: code, Description: desc, Err: err}
}

// Receiver verifies pushed SETs and acts on their events. It is safe for
// concurrent use.
type Receiver struct {
	cfg          Config
	transmitters map[string]*transmitter // by issuer
}

type transmitter struct {
	Transmitter
	keys *authn.KeySet
}

// New checks cfg and builds the transmitters' key sets (no I/O yet).
func New(cfg Config) (*Receiver, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("signals: %w", err)
	}
	r := &Receiver{cfg: cfg, transmitters: map[string]*transmitter{}}
	for _, t := range cfg.Transmitters {
		ks, err := authn.NewKeySet(authn.KeySetConfig{
			Name: "security_events." + t.Name, URL: t.JWKSURL, Algs: t.Algs, HTTPClient: cfg.HTTPClient,
			Now: cfg.Now, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("signals: transmitter %s: %w", t.Name, err)
		}
		r.transmitters[t.Issuer] = &transmitter{Transmitter: t, keys: ks}
	}
	return r, nil
}

// setClaims are a SET's claims (RFC 8417 §2.2) and SSF's sub_id.
type setClaims struct {
	Issuer   string                     `json:"iss"`
	Audience json.RawMessage            `json:"aud"`
	IAT      *json.Number               `json:"iat"`
	JTI      string                     `json:"jti"`
	SubID    json.RawMessage            `json:"sub_id"`
	Events   map[string]json.RawMessage `json:"events"`
}

// ReceiveSET verifies one SET and acts on its events. A refused SET is an
// *Error (nothing changed); any other error means an action failed after
// the SET was accepted (the store), and is logged with the SET's jti.
func (r *Receiver) ReceiveSET(ctx context.Context, raw []byte) error {
	if len(raw) == 0 || len(raw) > MaxSETBytes {
		return refuse(ErrCodeInvalidRequest, "the SET is empty or larger than 64 KiB", nil)
	}
	token := strings.TrimSpace(string(raw))
	if err := checkSETTyp(token); err != nil {
		return err
	}
	t, err := r.transmitterOf(token)
	if err != nil {
		return err
	}
	payload, err := t.keys.VerifySignature(ctx, token)
	if err != nil {
		return refuse(ErrCodeInvalidKey, "the SET's signature does not verify with the transmitter's keys", err)
	}
	var c setClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return refuse(ErrCodeInvalidRequest, "the SET's claims are malformed", err)
	}
	now := r.cfg.Now()
	iat, err := checkSETClaims(&c, t, now)
	if err != nil {
		return err
	}
	evs, err := parseEvents(&c, t)
	if err != nil {
		return err
	}
	if err := r.cfg.Sessions.ClaimOnce(ctx, "set "+c.Issuer+" "+c.JTI, iat.Add(maxSETAge+setSkew)); err != nil {
		if errors.Is(err, authn.ErrReplay) {
			return refuse(ErrCodeInvalidRequest, "a SET with this jti was already received", nil)
		}
		return fmt.Errorf("signals: recording jti: %w", err)
	}
	var errs []error
	for _, ev := range evs {
		if err := r.apply(ctx, t, ev); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.cfg.Logger.Error("security event accepted but not fully applied", "transmitter", t.Name, "jti", c.JTI, "err", err)
		return fmt.Errorf("signals: applying events: %w", err)
	}
	return nil
}

// checkSETTyp requires explicit typing (RFC 8417 §2.3), so that an ID
// token, access token or logout token is never taken for a SET.
func checkSETTyp(token string) error {
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return refuse(ErrCodeInvalidRequest, "the body is not a JWT", nil)
	}
	data, err := base64.RawURLEncoding.DecodeString(header)
	var h struct {
		Typ string `json:"typ"`
	}
	if err != nil || json.Unmarshal(data, &h) != nil {
		return refuse(ErrCodeInvalidRequest, "the JWT header is malformed", err)
	}
	switch strings.ToLower(h.Typ) {
	case "secevent+jwt", "application/secevent+jwt":
		return nil
	}
	return refuse(ErrCodeInvalidRequest, "the JWT's typ is not secevent+jwt", nil)
}

// transmitterOf reads the (not yet verified) iss to pick the keys.
func (r *Receiver) transmitterOf(token string) (*transmitter, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, refuse(ErrCodeInvalidRequest, "the body is not a signed JWT", nil)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Issuer string `json:"iss"`
	}
	if err != nil || json.Unmarshal(data, &c) != nil {
		return nil, refuse(ErrCodeInvalidRequest, "the JWT payload is malformed", err)
	}
	t := r.transmitters[c.Issuer]
	if t == nil {
		return nil, refuse(ErrCodeInvalidIssuer, "the SET's issuer is not a configured transmitter", nil)
	}
	return t, nil
}

// checkSETClaims checks aud, iat and jti.
func checkSETClaims(c *setClaims, t *transmitter, now time.Time) (time.Time, error) {
	if !audienceHas(c.Audience, t.Audience) {
		return time.Time{}, refuse(ErrCodeInvalidAudience, "the SET's aud does not name this receiver", nil)
	}
	if c.IAT == nil {
		return time.Time{}, refuse(ErrCodeInvalidRequest, "the SET has no iat", nil)
	}
	sec, err := c.IAT.Int64()
	iat := time.Unix(sec, 0)
	if err != nil || iat.After(now.Add(setSkew)) || iat.Before(now.Add(-maxSETAge)) {
		return iat, refuse(ErrCodeInvalidRequest, "the SET's iat is malformed or too far from now", err)
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return iat, refuse(ErrCodeInvalidRequest, "the SET needs a jti of at most 256 bytes", nil)
	}
	return iat, nil
}

// audienceHas reports whether aud (a string or an array of strings) names
// want.
func audienceHas(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(aud, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == want {
			return true
		}
	}
	return false
}
