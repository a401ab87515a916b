package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cli/browser"
)

// cmdAWS handles `ztproxy aws credential-process`: credentials for the AWS
// CLI/SDKs (`credential_process` in ~/.aws/config), obtained by signing in
// through the browser and handed back to a loopback listener, cached until
// five minutes before they expire.
func cmdAWS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, args, err := verbOf("aws", args, stdout, "credential-process")
	if err != nil {
		return err
	}
	fs := newFlags("aws credential-process", stdout, stderr)
	proxyURL := fs.String("proxy", "", "the proxy's external URL, e.g. https://access.example.com")
	role := fs.String("role", "", "AWS role name as configured in the proxy")
	noBrowser := fs.Bool("no-browser", false, "print the sign-in URL instead of opening a browser")
	cacheDir := fs.String("cache-dir", "", "credential cache directory (default: the user cache dir)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser sign-in")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *proxyURL == "" || *role == "" {
		return usageError("--proxy and --role are required")
	}
	base := strings.TrimSuffix(*proxyURL, "/")
	cache := cachePath(*cacheDir, base, *role)
	if creds, ok := readCachedCredentials(cache); ok {
		_, err := stdout.Write(creds)
		return err
	}
	creds, err := browserCredentials(ctx, base, *role, *noBrowser, *timeout, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o700); err == nil {
		_ = os.WriteFile(cache, creds, 0o600)
	}
	_, err = stdout.Write(creds)
	return err
}

func cachePath(dir, base, role string) string {
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		dir = filepath.Join(d, "ztproxy")
	}
	sum := sha256.Sum256([]byte(base + "\x00" + role))
	return filepath.Join(dir, "aws-"+hex.EncodeToString(sum[:8])+".json")
}

// readCachedCredentials returns cached credentials with more than five
// minutes left.
func readCachedCredentials(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var c struct {
		Version    int
		Expiration time.Time
	}
	if json.Unmarshal(data, &c) != nil || c.Version != 1 || time.Until(c.Expiration) < 5*time.Minute {
		return nil, false
	}
	return data, true
}

// browserCredentials runs the loopback hand-off for AWS credentials.
func browserCredentials(ctx context.Context, base, role string, noBrowser bool, timeout time.Duration, stderr io.Writer) ([]byte, error) {
	form, err := loopbackHandOff(ctx, handOff{
		what: fmt.Sprintf("get AWS credentials for role %q", role), noBrowser: noBrowser, timeout: timeout, stderr: stderr,
		target: func(port int, state string) string {
			return base + "/.ztp/aws/cli?" + url.Values{"role": {role}, "port": {fmt.Sprint(port)}, "state": {state}}.Encode()
		},
		check: func(form url.Values) error {
			var check struct{ Version int }
			if json.Unmarshal([]byte(form.Get("credentials")), &check) != nil || check.Version != 1 {
				return errors.New("malformed credentials")
			}
			return nil
		},
		done: "credentials received",
	})
	if err != nil {
		return nil, err
	}
	return []byte(form.Get("credentials")), nil
}

// handOff describes one loopback hand-off: the proxy page the user opens
// and what it must post back.
type handOff struct {
	what      string // "get AWS credentials for …", for the prompt
	target    func(port int, state string) string
	check     func(form url.Values) error
	done      string // shown in the browser tab on success
	noBrowser bool
	timeout   time.Duration
	stderr    io.Writer
}

// loopbackHandOff waits on a one-shot listener on 127.0.0.1 while the
// user signs in at the proxy in a browser; the proxy's page posts the
// result and our random state back. Only a POST with the state (compared
// in constant time) whose form passes check is taken.
func loopbackHandOff(ctx context.Context, h handOff) (url.Values, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var raw [24]byte
	rand.Read(raw[:])
	state := base64.RawURLEncoding.EncodeToString(raw[:])
	result := make(chan url.Values, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if r.Method != http.MethodPost || r.ParseForm() != nil ||
			subtle.ConstantTimeCompare([]byte(r.PostForm.Get("state")), []byte(state)) != 1 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		if err := h.check(r.PostForm); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ztproxy: "+h.done+"; you can close this tab.\n")
		select {
		case result <- r.PostForm:
		default:
		}
	})}
	go srv.Serve(ln)
	defer func() {
		// Let the hand-off's answer reach the page before the listener
		// goes (Close would cut it off).
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	target := h.target(ln.Addr().(*net.TCPAddr).Port, state)
	fmt.Fprintf(h.stderr, "ztproxy: sign in to %s:\n  %s\n", h.what, target)
	if !h.noBrowser {
		openBrowser(target, h.stderr)
	}
	select {
	case form := <-result:
		return form, nil
	case <-time.After(h.timeout):
		return nil, errors.New("timed out waiting for the browser sign-in")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// openBrowser opens target in the user's browser with
// github.com/cli/browser (xdg-open and its fallbacks, open on macOS,
// the URL handler on Windows; issue 15.16), without waiting: a text-mode
// browser would hold the terminal. The opener's output goes to stderr,
// because stdout carries the credentials.
func openBrowser(target string, stderr io.Writer) {
	browser.Stdout, browser.Stderr = stderr, stderr
	go func() {
		if err := browser.OpenURL(target); err != nil {
			fmt.Fprintf(stderr, "ztproxy: could not open a browser (%v); open the URL above yourself\n", err)
		}
	}()
}
