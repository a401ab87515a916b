package adminapi

import (
	"testing"

	"ztproxy/identity"
)

// TestAllowed: issue 17, only listed client certificates and bearer users
// of the admin IdP in an admin group are operators; a user of another IdP
// with the same group name, a browser session, or an unlisted service is
// not.
func TestAllowed(t *testing.T) {
	a := &API{cfg: Config{ClientIDs: []string{"spiffe://corp/ops/soar"}, BearerIdP: "corp", AdminGroups: []string{"ztp-admins"}}}
	for _, tc := range []struct {
		name string
		p    identity.Principal
		want bool
	}{
		{"listed certificate", identity.Principal{ID: "spiffe://corp/ops/soar", AuthKind: identity.AuthMTLS}, true},
		{"unlisted certificate", identity.Principal{ID: "spiffe://corp/ops/other", AuthKind: identity.AuthMTLS}, false},
		{"admin group", identity.Principal{ID: "i#ops", IdP: "corp", Groups: []string{"eng", "ztp-admins"}, AuthKind: identity.AuthBearer}, true},
		{"wrong group", identity.Principal{ID: "i#alice", IdP: "corp", Groups: []string{"eng"}, AuthKind: identity.AuthBearer}, false},
		{"admin group at another IdP", identity.Principal{ID: "x#ops", IdP: "partner", Groups: []string{"ztp-admins"}, AuthKind: identity.AuthBearer}, false},
		{"browser session", identity.Principal{ID: "i#ops", IdP: "corp", Groups: []string{"ztp-admins"}, AuthKind: identity.AuthBrowser}, false},
		{"listed id as a bearer subject", identity.Principal{ID: "spiffe://corp/ops/soar", IdP: "corp", AuthKind: identity.AuthBearer}, false},
		{"anonymous", identity.Principal{}, false},
	} {
		if got := a.Allowed(tc.p); got != tc.want {
			t.Errorf("%s: Allowed = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("an API without operators was built")
	}
}
