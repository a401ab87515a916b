package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"ztproxy/internal/testenv"
)

// Issue 16: posture on the real binary — stale posture is denied or asks
// for step-up as the policy says, and signed vendor posture counts only
// when it verifies with the vendor's keys, is bound to this device and
// unexpired; otherwise it is ignored with a logged reason.
func TestDevicePostureE2E(t *testing.T) {
	vendorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := filepath.Join(t.TempDir(), "edr.jwks")
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: vendorKey.Public(), KeyID: "edr-1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(jwks, set, 0o600); err != nil {
		t.Fatal(err)
	}
	extAuthz := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := newDeviceEnv(t, deviceEnvOptions{top: "ext_authz_listen: " + extAuthz, devices: fmt.Sprintf(`  vendors:
    - {name: edr, issuer: "https://edr.example", jwks_file: %q, score_claim: assessment.overall}`, jwks)})
	browser := e.browserEnv.client(t)
	e.op.Login(t, browser, e.base+"/", e.op.User(t, "alice"), true)
	devDir := filepath.Join(e.dir, "dev")
	id := deviceIDRE.FindStringSubmatch(e.enroll(t, browser, "alice", devDir))[1]
	token := e.token(t, "alice")
	dc := e.deviceClient(t, devDir)

	t.Run("ext_authz: Envoy passes the peer certificate", func(t *testing.T) {
		if code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--fact", "disk_encrypted=true"); code != 0 {
			t.Fatalf("report: %d %s", code, out)
		}
		checkExtAuthzDevice(t, extAuthz, devDir, token, e.token(t, "bob"))
	})

	t.Run("stale posture is denied or asks for step-up", func(t *testing.T) {
		if code, out := runZtproxy(t, "device", "report", "--dir", devDir); code != 0 {
			t.Fatalf("report: %d %s", code, out)
		}
		reported := time.Now()
		code, body := call(t, dc, e.base+"/fresh/x", token)
		if time.Since(reported) < 2*time.Second && code != 200 {
			t.Errorf("fresh posture: %d %s", code, body)
		}
		time.Sleep(time.Until(reported.Add(3500 * time.Millisecond)))
		if code, body := call(t, dc, e.base+"/fresh/x", token); code != http.StatusForbidden {
			t.Errorf("stale posture on a deny route: %d %s", code, body)
		}
		req, _ := http.NewRequest("GET", e.base+"/fresh-stepup/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := dc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_user_authentication") {
			t.Errorf("stale posture on a step-up route: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("signed vendor posture", func(t *testing.T) {
		wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		now := time.Now()
		claims := func(sub string, exp time.Time) map[string]any {
			return map[string]any{"iss": "https://edr.example", "sub": sub, "iat": now.Unix(), "exp": exp.Unix(), "assessment": map[string]any{"overall": 91}}
		}
		for _, tt := range []struct {
			name, reason string
			key          *ecdsa.PrivateKey
			claims       map[string]any
		}{
			{"wrong key", "signature", wrongKey, claims(id, now.Add(time.Hour))},
			{"another device", "bound to another device", vendorKey, claims("aaaaaaaaaaaaaaaaaaaaaaaaaa", now.Add(time.Hour))},
			{"expired", "expired", vendorKey, claims(id, now.Add(-time.Hour))},
		} {
			file := writeAssertion(t, e.dir, tt.key, tt.claims)
			code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--vendor-assertion", file)
			if code != 0 || !strings.Contains(out, "vendor assertion ignored (edr)") || !strings.Contains(out, tt.reason) {
				t.Errorf("%s: %d %s", tt.name, code, out)
			}
			if code, body := call(t, dc, e.base+"/edr/x", token); code != http.StatusForbidden {
				t.Errorf("%s: the score counted: %d %s", tt.name, code, body)
			}
		}
		if log := e.proc.output(); strings.Count(log, "vendor posture assertion ignored") < 3 || !strings.Contains(log, "bound to another device") {
			t.Errorf("serve log lacks the ignored assertions:\n%s", log)
		}
		file := writeAssertion(t, e.dir, vendorKey, claims(id, now.Add(time.Hour)))
		if code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--vendor-assertion", file); code != 0 || strings.Contains(out, "ignored") {
			t.Fatalf("good assertion: %d %s", code, out)
		}
		if code, body := call(t, dc, e.base+"/edr/x", token); code != 200 {
			t.Errorf("vendor score 91: %d %s", code, body)
		}
	})
}

// writeAssertion signs claims as the vendor's agent would and writes the
// JWS to a file.
func writeAssertion(t *testing.T, dir string, key *ecdsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "edr-1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	f, err := os.CreateTemp(dir, "assertion-*.jws")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(raw)
	f.Close()
	return f.Name()
}

// checkExtAuthzDevice asks the ext_authz listener as Envoy does, with the
// downstream peer's principal and (include_peer_certificate) its
// URL-encoded certificate: the owner's enrolled device passes, another
// user with it does not, and a principal without the certificate is no
// enrolled device.
func checkExtAuthzDevice(t *testing.T, addr, devDir, alice, bob string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	certPEM, err := os.ReadFile(filepath.Join(devDir, "device.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := loadDeviceCert(deviceFiles{cert: filepath.Join(devDir, "device.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(token string, withCert bool) int32 {
		peer := &authv3.AttributeContext_Peer{Principal: cert.URIs[0].String()}
		if withCert {
			peer.Certificate = url.QueryEscape(string(certPEM))
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: peer, Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Id: "envoy-1", Method: "GET", Host: "127.0.0.1", Path: "/api/x", Scheme: "https",
				Headers: map[string]string{":authority": "127.0.0.1", ":path": "/api/x", ":method": "GET", "authorization": "Bearer " + token}},
		}}}
		resp, err := client.Check(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode()
	}
	if code := ask(alice, true); code != int32(codes.OK) {
		t.Errorf("alice with her device through ext_authz: code %d", code)
	}
	if code := ask(bob, true); code != int32(codes.PermissionDenied) {
		t.Errorf("bob with alice's device through ext_authz: code %d", code)
	}
	if code := ask(alice, false); code != int32(codes.PermissionDenied) {
		t.Errorf("a principal without its certificate counted as enrolled: code %d", code)
	}
}
