package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// resolve makes name absolute against the base directory.
func (f *File) resolve(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(f.BaseDir, name)
}

// checkFile makes *name absolute and reports it unless it is an existing
// regular file (or something that reads like one, such as a pipe). An empty
// name is left alone: the caller decides whether it is required.
func (f *File) checkFile(c *collector, path string, name *string) bool {
	if *name == "" {
		return false
	}
	*name = f.resolve(*name)
	info, err := os.Stat(*name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.add(path, "%s: no such file", *name)
	case err != nil:
		c.add(path, "%s: %v", *name, unwrapPathError(err))
	case info.IsDir():
		c.add(path, "%s: is a directory", *name)
	default:
		return true
	}
	return false
}

// unwrapPathError drops the operation and file name from an *fs.PathError,
// since the message already names the file.
func unwrapPathError(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// checkPolicies expands the policies globs into PolicyFiles and runs the
// CheckPolicies hook over them.
func (f *File) checkPolicies(c *collector, opts Options) {
	var files []string
	for i, pattern := range f.Policies {
		path := indexPath("policies", i)
		if pattern == "" {
			c.add(path, "required: a file name or glob pattern")
			continue
		}
		abs := f.resolve(pattern)
		if !strings.ContainsAny(pattern, "*?[") {
			if f.checkFile(c, path, &abs) {
				files = append(files, abs)
			}
			continue
		}
		matches, err := filepath.Glob(abs)
		if err != nil {
			c.add(path, "%s: malformed glob pattern", abs)
			continue
		}
		found := false
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && !info.IsDir() {
				files = append(files, m)
				found = true
			}
		}
		if !found {
			c.add(path, "%s: matches no file", abs)
		}
	}
	slices.Sort(files)
	f.PolicyFiles = slices.Compact(files)

	if len(f.Policies) == 0 && f.needsPolicies() {
		c.add("policies", "required: without policies every request to a non-public route is denied")
	}
	if opts.CheckPolicies == nil || len(f.PolicyFiles) == 0 {
		return
	}
	if err := opts.CheckPolicies(slices.Clone(f.PolicyFiles), f.Location); err != nil {
		for _, msg := range splitErrors(err) {
			c.add("policies", "%s", msg)
		}
	}
}

// needsPolicies reports whether any request will be evaluated by policy.
func (f *File) needsPolicies() bool {
	if f.Mode == ModeSidecar {
		return true
	}
	for _, r := range f.Routes {
		switch r.Auth {
		case AuthBearer, AuthBrowser, AuthMTLS:
			return true
		}
	}
	return false
}

// splitErrors flattens an errors.Join tree into messages, falling back to
// one message per line for errors that were joined by hand.
func splitErrors(err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var msgs []string
		for _, e := range joined.Unwrap() {
			if e != nil {
				msgs = append(msgs, splitErrors(e)...)
			}
		}
		return msgs
	}
	var msgs []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			msgs = append(msgs, line)
		}
	}
	return msgs
}

// checkSigningKey reports a signing key file that is not a PEM EC P-256
// private key. The key itself never appears in a message.
func checkSigningKey(c *collector, path, name string) {
	if _, err := LoadSigningKey(name); err != nil {
		c.add(path, "%v", err)
	}
}

// LoadSigningKey reads a PEM EC P-256 private key (SEC 1 or PKCS #8).
// Errors name the file but never include key material.
func LoadSigningKey(name string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, unwrapPathError(err))
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block found; want an EC P-256 private key", name)
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block is %q; want an EC P-256 private key", name, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: malformed private key", name)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an EC P-256 private key (assertions are signed with ES256)", name)
	}
	return ec, nil
}

// isDir reports whether name is an existing directory.
func isDir(name string) bool {
	info, err := os.Stat(name)
	return err == nil && info.IsDir()
}
