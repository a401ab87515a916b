package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// usersOptions configure the distinct-users soak (issue 23): every request
// carries a bearer token of a user the proxy has not seen, and the proxy's
// RSS is sampled against the number of distinct users.
type usersOptions struct {
	users  int           // distinct users to send
	rate   float64       // requests (= new users) per second
	step   int           // RSS sample every step users
	idle   time.Duration // CPU measured over this idle time afterwards
	settle time.Duration // wait before the idle measurement (the last flushes)
	config string        // extra YAML appended to the proxy's config (e.g. "risk: {max_users: 50000}")
}

// usersSample is one point of the curve.
type usersSample struct {
	Users int
	RSSMB float64
}

// runUsers runs the distinct-users soak against bin (a fresh build of
// ./cmd/ztproxy when empty) and prints the users → RSS curve and the idle
// CPU afterwards. The tokens are ES256 JWTs minted here for an issuer
// served here (discovery + JWKS): the soak measures the proxy's per-user
// state, and a real OP cannot sign 100k users' tokens quickly.
func runUsers(o options, uo usersOptions) error {
	work, err := os.MkdirTemp("", "ztpbench-users-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := &env{o: o, work: work, logs: filepath.Join(work, "logs")}
	os.MkdirAll(e.logs, 0o755)
	defer e.stopAll()
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	bin := o.altBin
	if bin == "" {
		bin = filepath.Join(work, "ztproxy")
		build := exec.Command("go", "build", "-o", bin, "./cmd/ztproxy")
		build.Dir = o.repo
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/ztproxy: %v\n%s", err, out)
		}
	}
	up, upAddr, err := startProcess("upstream", e.logs, []string{roleEnv + "=upstream"}, true, e.self, "-addr", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.track(up)
	iss, err := startIssuer()
	if err != nil {
		return err
	}
	defer iss.srv.Close()
	listen, admin := freeAddr(), freeAddr()
	cfg := filepath.Join(work, "ztproxy.yaml")
	policy := filepath.Join(work, "policy.cedar")
	writeFile(policy, `permit (principal, action, resource == Route::"api");`+"\n")
	writeFile(cfg, fmt.Sprintf(`listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
policies: [%q]
idps:
  - {name: corp, issuer: %q, audiences: [%q]}
store: {backend: embedded, path: %q}
audit: {output: %q}
log: {level: warn, format: json}
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: "http://%s", auth: bearer}
%s
`, listen, admin, listen, policy, iss.issuer, apiResource, filepath.Join(work, "state.db"), filepath.Join(work, "audit.log"), upAddr, uo.config))
	if out, err := exec.Command(bin, "check-config", "--config", cfg).CombinedOutput(); err != nil {
		return fmt.Errorf("check-config: %v\n%s", err, out)
	}
	p, _, err := startProcess("ztproxy", e.logs, nil, false, bin, "serve", "--config", cfg)
	if err != nil {
		return err
	}
	e.track(p)
	if err := waitHTTP("http://"+admin+"/readyz", 20*time.Second, p); err != nil {
		return err
	}
	logf := o.logf
	logf("ztproxy %s: admin (metrics, pprof with -users-config 'server: {pprof: true}') on http://%s", bin, admin)
	samples, failures, err := sendUsers(iss, "http://"+listen+"/api/hello", p.pid(), uo, logf)
	if err != nil {
		return err
	}
	logf("settling %s, then measuring idle CPU over %s", uo.settle, uo.idle)
	time.Sleep(uo.settle)
	before, err := readProcStat([]int{p.pid()})
	if err != nil {
		return err
	}
	time.Sleep(uo.idle)
	after, err := readProcStat([]int{p.pid()})
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Distinct users (%d at %.0f/s, %s)\n\n| distinct users | RSS MiB |\n|---:|---:|\n", uo.users, uo.rate, bin)
	for _, s := range samples {
		fmt.Fprintf(&b, "| %d | %.1f |\n", s.Users, s.RSSMB)
	}
	fmt.Fprintf(&b, "\nnon-200 answers: %d; idle CPU over %s (after %s to settle): %.2f %% of a core; RSS then %.1f MiB\n",
		failures, uo.idle, uo.settle, 100*float64(after.cpu-before.cpu)/float64(uo.idle), float64(after.rssKB)/1024)
	fmt.Println(b.String())
	return nil
}

// sendUsers sends one request per new user at uo.rate and samples the
// proxy's RSS every uo.step users.
func sendUsers(iss *issuer, target string, pid int, uo usersOptions, logf func(string, ...any)) ([]usersSample, int64, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	var next, done, failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(uo.users) {
					return
				}
				if d := time.Until(start.Add(time.Duration(float64(i) / uo.rate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
				if !userRequest(client, target, iss.token(fmt.Sprintf("bench-user-%d", i))) {
					failures.Add(1)
				}
				done.Add(1)
			}
		})
	}
	var samples []usersSample
	for last := 0; ; {
		n := int(done.Load())
		if n/uo.step > last/uo.step || n >= uo.users {
			st, err := readProcStat([]int{pid})
			if err != nil {
				return nil, 0, err
			}
			samples = append(samples, usersSample{Users: n, RSSMB: float64(st.rssKB) / 1024})
			logf("%d users: RSS %.1f MiB", n, float64(st.rssKB)/1024)
			last = n
		}
		if n >= uo.users {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	return samples, failures.Load(), nil
}

func userRequest(c *http.Client, target, token string) bool {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// issuer serves an OpenID discovery document and a JWKS on loopback and
// signs ES256 access tokens for any subject.
type issuer struct {
	issuer string
	srv    *http.Server
	signer jose.Signer
}

func startIssuer() (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &issuer{issuer: "http://" + ln.Addr().String()}
	iss.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "bench"))
	if err != nil {
		return nil, err
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bench", Algorithm: "ES256", Use: "sig"}}})
	disco, _ := json.Marshal(map[string]any{"issuer": iss.issuer, "jwks_uri": iss.issuer + "/jwks",
		"authorization_endpoint": iss.issuer + "/auth", "token_endpoint": iss.issuer + "/token",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"}})
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) { w.Write(disco) })
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) })
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go iss.srv.Serve(ln)
	return iss, nil
}

// token signs an access token for sub, valid for an hour.
func (i *issuer) token(sub string) string {
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"iss": i.issuer, "sub": sub, "aud": apiResource,
		"iat": now, "nbf": now - 5, "exp": now + 3600, "email": sub + "@example.com", "email_verified": true})
	jws, err := i.signer.Sign(claims)
	if err != nil {
		panic(err) // an ES256 signature over bytes cannot fail
	}
	s, _ := jws.CompactSerialize()
	return s
}
