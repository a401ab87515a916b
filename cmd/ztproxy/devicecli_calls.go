package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"ztproxy/certs"
	"ztproxy/devices"
	"ztproxy/identity"
)

// deviceClient is an HTTPS client presenting the device certificate. It
// follows no redirects: a device call answers where it was sent.
func deviceClient(files deviceFiles, st deviceState) (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if st.CACert != "" {
		data, err := os.ReadFile(st.CACert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%s: no PEM certificate", st.CACert)
		}
	}
	return &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// devicePost posts body to the proxy over mTLS and returns the answer,
// or an error carrying the proxy's message.
func devicePost(ctx context.Context, files deviceFiles, st deviceState, path, contentType string, body []byte) ([]byte, error) {
	client, err := deviceClient(files, st)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.Proxy+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		if json.Unmarshal(answer, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("%s: %d %s: %s", path, resp.StatusCode, e.Error, e.Message)
		}
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return answer, nil
}

// reportOptions add to what Collect found.
type reportOptions struct {
	facts      map[string]string // --fact NAME=VALUE overrides
	assertions []string          // --vendor-assertion files
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func deviceReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("device report", stdout, stderr)
	dir := fs.String("dir", "", "device directory")
	var facts, assertions multiFlag
	fs.Var(&facts, "fact", "NAME=VALUE: state a fact the CLI cannot read here (recorded as reported by the device)")
	fs.Var(&assertions, "vendor-assertion", "file holding a vendor's signed posture assertion (JWS)")
	dryRun := fs.Bool("dry-run", false, "print the report instead of sending it")
	if err := fs.parse(args); err != nil {
		return err
	}
	opts := reportOptions{facts: map[string]string{}, assertions: assertions}
	for _, f := range facts {
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return usageError("--fact takes NAME=VALUE")
		}
		opts.facts[name] = value
	}
	if *dryRun {
		rep, err := buildReport(ctx, opts)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	files, st, _, err := loadDevice(*dir)
	if err != nil {
		return err
	}
	return sendReport(ctx, files, st, opts, stdout)
}

// buildReport collects the facts and applies the overrides.
func buildReport(ctx context.Context, opts reportOptions) (devices.Report, error) {
	rep := devices.Collect(ctx)
	for name, value := range opts.facts {
		kind, ok := identity.KindOf(name)
		if !ok {
			return rep, fmt.Errorf("--fact %s: not a posture fact", name)
		}
		switch {
		case value == "unknown":
			rep.Facts[name] = nil
		case kind == identity.FactBool:
			b, err := strconv.ParseBool(value)
			if err != nil {
				return rep, fmt.Errorf("--fact %s: %w", name, err)
			}
			rep.Facts[name] = b
		default:
			rep.Facts[name] = value
		}
	}
	for _, path := range opts.assertions {
		data, err := os.ReadFile(path)
		if err != nil {
			return rep, err
		}
		rep.VendorAssertions = append(rep.VendorAssertions, strings.TrimSpace(string(data)))
	}
	return rep, nil
}

func sendReport(ctx context.Context, files deviceFiles, st deviceState, opts reportOptions, stdout io.Writer) error {
	rep, err := buildReport(ctx, opts)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	answer, err := devicePost(ctx, files, st, "/.ztp/devices/report", "application/json", body)
	if err != nil {
		return fmt.Errorf("posture report: %w", err)
	}
	var res devices.ReportResult
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("posture report: unexpected answer: %w", err)
	}
	fmt.Fprintf(stdout, "posture reported for device %s: known %s; unknown %s\n", res.DeviceID, listOr(res.Known), listOr(res.Unknown))
	for _, ig := range res.Ignored {
		fmt.Fprintf(stdout, "  vendor assertion ignored (%s): %s\n", ig.Vendor, ig.Reason)
	}
	return nil
}

func listOr(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, ", ")
}

func deviceRenew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("device renew", stdout, stderr)
	dir := fs.String("dir", "", "device directory")
	within := fs.Duration("within", 0, "renew only when the certificate expires within this long (default: a third of its lifetime)")
	force := fs.Bool("force", false, "renew now")
	if err := fs.parse(args); err != nil {
		return err
	}
	files, st, cur, err := loadDevice(*dir)
	if err != nil {
		return err
	}
	if *within == 0 {
		*within = cur.NotAfter.Sub(cur.NotBefore) / 3
	}
	if left := time.Until(cur.NotAfter); left > *within && !*force {
		fmt.Fprintf(stdout, "certificate valid for %s more; not renewing (--within %s)\n", left.Round(time.Minute), *within)
		return nil
	}
	key, csr, err := newDeviceKey(st.Name)
	if err != nil {
		return err
	}
	answer, err := devicePost(ctx, files, st, "/.ztp/devices/renew", "application/pkcs10", csr)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	var res struct{ Certificate string }
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("renew: unexpected answer: %w", err)
	}
	cert, err := issuedFor(res.Certificate, key)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := saveDevice(files, st, key, res.Certificate); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "renewed device %s: certificate valid until %s\n", st.DeviceID, cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func deviceExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("device export", stdout, stderr)
	dir := fs.String("dir", "", "device directory")
	out := fs.String("p12", "", "PKCS#12 file to write (for a browser or OS keychain)")
	password := fs.String("password", "", "PKCS#12 password (default: a random one, printed)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usageError("--p12 is required")
	}
	files, err := deviceFilesIn(*dir)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		return err
	}
	if *password == "" {
		*password = randomWord()
		fmt.Fprintf(stderr, "ztproxy: PKCS#12 password: %s\n", *password)
	}
	data, err := pkcs12.Modern.Encode(pair.PrivateKey, pair.Leaf, nil, *password)
	if err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(*out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (certificate and key); import it into your browser or keychain, again after each renewal\n", *out)
	return nil
}

// randomWord is a random 22-character password or secret.
func randomWord() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
