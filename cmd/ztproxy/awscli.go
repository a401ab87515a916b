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

// browserCredentials runs the loopback hand-off: a one-shot listener on
// 127.0.0.1, the browser opened at the proxy, and the proxy's page posting
// the credentials and our state back.
func browserCredentials(ctx context.Context, base, role string, noBrowser bool, timeout time.Duration, stderr io.Writer) ([]byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var raw [24]byte
	rand.Read(raw[:])
	state := base64.RawURLEncoding.EncodeToString(raw[:])
	result := make(chan []byte, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil ||
			subtle.ConstantTimeCompare([]byte(r.PostForm.Get("state")), []byte(state)) != 1 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		creds := []byte(r.PostForm.Get("credentials"))
		var check struct{ Version int }
		if json.Unmarshal(creds, &check) != nil || check.Version != 1 {
			http.Error(w, "malformed credentials", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ztproxy: credentials received; you can close this tab.\n")
		select {
		case result <- creds:
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
	port := ln.Addr().(*net.TCPAddr).Port
	target := base + "/.ztp/aws/cli?" + url.Values{"role": {role}, "port": {fmt.Sprint(port)}, "state": {state}}.Encode()
	fmt.Fprintf(stderr, "ztproxy: sign in to get AWS credentials for role %q:\n  %s\n", role, target)
	if !noBrowser {
		openBrowser(target, stderr)
	}
	select {
	case creds := <-result:
		return creds, nil
	case <-time.After(timeout):
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
