package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackchannelLogoutTwoReplicas: issue 17, a session ended at the IdP
// lived on at the proxy until it expired. Now the real OP (npm
// oidc-provider, features.backchannelLogout) POSTs a logout token to
// /.ztp/backchannel-logout when the user signs out there, and both
// replicas sharing dynalite refuse the proxy session within a second
// (default revocation cache TTL: 30 s).
func TestBackchannelLogoutTwoReplicas(t *testing.T) {
	k := newKillSwitchEnv(t, true)
	c := tlsClient(t, k.certDir, false)
	browser, cookie := k.signInClient(t, "alice")
	_, other := k.signInClient(t, "alice") // another browser: another OP session
	for _, pub := range []string{k.pubA, k.pubB} {
		if st := k.status(t, c, pub, "/app/x", cookie, ""); st != 200 {
			t.Fatalf("before: %s %d", pub, st)
		}
	}
	start := time.Now()
	// End the session at the OP itself (not through the proxy): the OP's
	// own sign-out page, confirmed.
	resp := k.op.Logout(t, browser, k.op.EndSessionEndpoint)
	resp.Body.Close()
	took := within(t, time.Second, "session refused after the OP's back-channel logout", func(pub string) bool {
		return k.status(t, c, pub, "/app/x", cookie, "") == http.StatusFound
	}, k.pubA, k.pubB)
	t.Logf("OP sign-out took %s; proxy session refused on both replicas %s after it was confirmed", time.Since(start)-took, took)
	// sid-scoped: alice's session from another browser (another OP
	// session) is untouched.
	if st := k.status(t, c, k.pubB, "/app/x", other, ""); st != 200 {
		t.Errorf("the other OP session's proxy session: %d", st)
	}
	waitFor(t, 5*time.Second, "the audit log of A to record the logout", func() bool {
		audit, _ := os.ReadFile(filepath.Join(k.dir, "a-audit.log"))
		return strings.Contains(string(audit), `"path":"/.ztp/backchannel-logout"`) && strings.Contains(string(audit), `"status":200`)
	})
}
