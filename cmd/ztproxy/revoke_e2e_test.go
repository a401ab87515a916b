package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ztproxy/authn"
	"ztproxy/internal/testenv"
)

// storedRefreshTokens reads the refresh tokens of every session in the
// embedded store file (ztproxy stopped), opening them with the session
// secret.
func storedRefreshTokens(t *testing.T, path string, secret []byte) []string {
	sealer, err := authn.NewTokenSealer([][]byte{secret})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("sessions")).ForEach(func(_, v []byte) error {
			var s struct {
				RefreshToken []byte `json:"refresh_token"`
				Sealed       bool   `json:"sealed"`
			}
			if err := json.Unmarshal(v, &s); err != nil || len(s.RefreshToken) == 0 {
				return err
			}
			plain := s.RefreshToken
			if s.Sealed {
				if plain, err = sealer.Open(s.RefreshToken); err != nil {
					return err
				}
			}
			out = append(out, string(plain))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSignOutRevokesRefreshTokenAtIdP: issue 17, signing out ended the
// proxy session but left the IdP's refresh token valid for its full
// lifetime. Now sign-out revokes it at the IdP's revocation_endpoint (RFC
// 7009, real npm oidc-provider), so a stolen copy cannot be refreshed.
func TestSignOutRevokesRefreshTokenAtIdP(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	if e.op.RevocationEndpoint == "" {
		t.Fatal("the test OP advertises no revocation_endpoint")
	}
	c := e.client(t)
	resp := e.op.Login(t, c, e.base+"/x", e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	// Sign out at the proxy only (the browser does not go on to the OP,
	// whose own logout would not end an offline_access grant anyway).
	resp, err := noFollow(c).Get(e.base + "/.ztp/logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	e.proc.cmd.Process.Signal(syscall.SIGTERM)
	<-e.proc.done
	tokens := storedRefreshTokens(t, filepath.Join(filepath.Dir(e.configPath), "state.db"), []byte("0123456789abcdef0123456789abcdef"))
	if len(tokens) != 1 {
		t.Fatalf("stored refresh tokens: %d, want 1", len(tokens))
	}
	client := e.op.Client(t, "ztproxy")
	status, body := e.op.TokenRequest(t, client.ID, client.Secret, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {tokens[0]}})
	if status != http.StatusBadRequest {
		t.Fatalf("refresh with the signed-out session's token: %d %s, want 400 invalid_grant", status, body)
	}
}
