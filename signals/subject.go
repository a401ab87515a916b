package signals

import (
	"encoding/json"
	"strings"

	"ztproxy/identity"
)

// Event type URIs (CAEP and RISC, OpenID Shared Signals Framework).
const (
	caep = "https://schemas.openid.net/secevent/caep/event-type/"
	risc = "https://schemas.openid.net/secevent/risc/event-type/"

	EventSessionRevoked         = caep + "session-revoked"
	EventCredentialChange       = caep + "credential-change"
	EventAssuranceLevelChange   = caep + "assurance-level-change"
	EventTokenClaimsChange      = caep + "token-claims-change"
	EventDeviceComplianceChange = caep + "device-compliance-change"
	EventAccountDisabled        = risc + "account-disabled"
	EventAccountEnabled         = risc + "account-enabled"
	EventAccountPurged          = risc + "account-purged"
	EventCredentialCompromise   = risc + "credential-compromise"
	EventSessionsRevoked        = risc + "sessions-revoked"
)

// maxEvents bounds the events of one SET (RFC 8417 allows several about
// one subject; real SETs carry one).
const maxEvents = 8

// subject is an RFC 9493 subject identifier resolved to what the proxy
// knows: users by id or email, IdP sessions, devices.
type subject struct {
	users   []string // user ids (<issuer>#<sub>)
	emails  []string
	sids    []string // IdP session ids at the transmitter's IdP
	devices []string
}

func (s *subject) empty() bool {
	return len(s.users)+len(s.emails)+len(s.sids)+len(s.devices) == 0
}

// event is one parsed event of a SET.
type event struct {
	typ     string
	subject subject
	payload map[string]json.RawMessage
}

// parseEvents reads the events member and each event's subject: the
// event's own "subject" (CAEP 1.0 drafts), else the SET's "sub_id" (SSF
// 1.0). An unknown or malformed subject format refuses the whole SET.
func parseEvents(c *setClaims, t *transmitter) ([]event, error) {
	if len(c.Events) == 0 || len(c.Events) > maxEvents {
		return nil, refuse(ErrCodeInvalidRequest, "the SET must carry 1 to 8 events", nil)
	}
	var out []event
	for typ, raw := range c.Events {
		var payload map[string]json.RawMessage
		if err := json.Unmarshal(raw, &payload); err != nil || payload == nil {
			return nil, refuse(ErrCodeInvalidRequest, "event "+typ+" is not a JSON object", err)
		}
		subRaw := payload["subject"]
		if len(subRaw) == 0 {
			subRaw = c.SubID
		}
		if len(subRaw) == 0 {
			return nil, refuse(ErrCodeInvalidRequest, "event "+typ+" has no subject (sub_id)", nil)
		}
		var s subject
		if err := parseSubject(subRaw, "", &s, 0); err != nil {
			return nil, err
		}
		if typ == EventDeviceComplianceChange {
			var status string
			_ = json.Unmarshal(payload["current_status"], &status)
			if status != "compliant" && status != "not-compliant" {
				return nil, refuse(ErrCodeInvalidRequest, "device-compliance-change needs current_status compliant or not-compliant", nil)
			}
		}
		out = append(out, event{typ: typ, subject: s, payload: payload})
	}
	return out, nil
}

// rawSubject is any RFC 9493 subject identifier, or a CAEP complex one.
type rawSubject struct {
	Format  string          `json:"format"`
	Iss     string          `json:"iss"`
	Sub     string          `json:"sub"`
	Email   string          `json:"email"`
	ID      string          `json:"id"`
	User    json.RawMessage `json:"user"`
	Device  json.RawMessage `json:"device"`
	Session json.RawMessage `json:"session"`
}

// parseSubject resolves raw into s; role is "user", "device" or
// "session" inside a complex subject ("" at the top).
func parseSubject(raw json.RawMessage, role string, s *subject, depth int) error {
	var r rawSubject
	if depth > 1 || json.Unmarshal(raw, &r) != nil {
		return refuse(ErrCodeInvalidRequest, "the subject is malformed", nil)
	}
	bad := func(what string) error {
		return refuse(ErrCodeInvalidRequest, "subject format "+r.Format+": "+what, nil)
	}
	switch r.Format {
	case "iss_sub":
		if r.Iss == "" || r.Sub == "" {
			return bad("iss and sub are required")
		}
		s.users = append(s.users, identity.UserID(r.Iss, r.Sub))
	case "email":
		if !strings.Contains(r.Email, "@") {
			return bad("email is required")
		}
		s.emails = append(s.emails, r.Email)
	case "opaque":
		if r.ID == "" || len(r.ID) > 512 {
			return bad("id is required")
		}
		switch role {
		case "session":
			s.sids = append(s.sids, r.ID)
		case "device":
			s.devices = append(s.devices, r.ID)
		default:
			s.users = append(s.users, r.ID)
		}
	case "complex", "":
		if len(r.User)+len(r.Device)+len(r.Session) == 0 {
			return refuse(ErrCodeInvalidRequest, "unknown subject format "+quoteFormat(r.Format), nil)
		}
		for _, m := range []struct {
			role string
			raw  json.RawMessage
		}{{"user", r.User}, {"device", r.Device}, {"session", r.Session}} {
			if len(m.raw) > 0 {
				if err := parseSubject(m.raw, m.role, s, depth+1); err != nil {
					return err
				}
			}
		}
	default:
		return refuse(ErrCodeInvalidRequest, "unknown subject format "+quoteFormat(r.Format)+" (supported: iss_sub, email, opaque, complex)", nil)
	}
	return nil
}

// quoteFormat names a format for a message, bounded.
func quoteFormat(f string) string {
	if len(f) > 32 {
		f = f[:32]
	}
	return `"` + f + `"`
}
