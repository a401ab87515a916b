package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"ztproxy/config"
)

// healthcheckMaxTimeout bounds --timeout: an exec health check that hangs
// is worse than one that fails.
const healthcheckMaxTimeout = 30 * time.Second

// cmdHealthcheck probes /readyz on the admin listener and exits 0 when it
// answers 200, 1 otherwise: an exec health check for images without a shell
// or wget (the distroless image). The address comes from --admin, else from
// the config's admin_listen, else 127.0.0.1:9090; a wildcard host (0.0.0.0,
// [::]) is probed on loopback.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", stdout, stderr)
	admin := fs.String("admin", "", "admin listener host:port (default: the config's admin_listen, else 127.0.0.1:9090)")
	configPath := fs.String("config", "", "configuration file to read admin_listen from")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long (at most 30s)")
	quiet := fs.Bool("quiet", false, "print nothing on success")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *timeout <= 0 || *timeout > healthcheckMaxTimeout {
		return usageError("--timeout must be > 0 and at most 30s")
	}
	addr := *admin
	if addr == "" && *configPath != "" {
		f, err := config.Load(*configPath, config.Options{})
		if err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
		addr = f.AdminListen
	}
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	target, err := probeAddress(addr)
	if err != nil {
		return usageError(err.Error())
	}
	if err := probeReady(ctx, target, *timeout); err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stdout, "ready (%s)\n", target)
	}
	return nil
}

// probeAddress is the address to dial for a listen address: a wildcard or
// empty host becomes loopback.
func probeAddress(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// probeReady GETs http://addr/readyz once, without proxies or redirects,
// and fails unless it answers 200 within timeout.
func probeReady(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("not ready: %s/readyz did not answer within %s", addr, timeout)
		}
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s/readyz answered %s", addr, resp.Status)
	}
	return nil
}
