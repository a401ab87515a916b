package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFileBytes bounds a secret file: a few keys, never a whole disk
// image read into memory because a path was mistyped.
const maxSecretFileBytes = 64 << 10

// readSecretFile makes *name absolute and returns the content of the
// secret file without its trailing line break. Problems are reported at
// path and never quote the content; a file other users can read is a
// warning, since mounted secrets are often created that way.
func (f *File) readSecretFile(c *collector, path string, name *string) (string, bool) {
	if !f.checkFile(c, path, name) {
		return "", false
	}
	file, err := os.Open(*name)
	if err != nil {
		c.add(path, "%s: %v", *name, unwrapPathError(err))
		return "", false
	}
	defer file.Close()
	if info, err := file.Stat(); err == nil {
		warnWorldReadable(c, path, *name, info)
	}
	data, err := io.ReadAll(io.LimitReader(file, maxSecretFileBytes+1))
	switch {
	case err != nil:
		c.add(path, "%s: %v", *name, unwrapPathError(err))
		return "", false
	case len(data) > maxSecretFileBytes:
		c.add(path, "%s: larger than %d KiB; is this the right file?", *name, maxSecretFileBytes>>10)
		return "", false
	}
	content := strings.TrimRight(string(data), "\r\n")
	if strings.TrimSpace(content) == "" {
		c.add(path, "%s: is empty", *name)
		return "", false
	}
	return content, true
}

// warnWorldReadable warns about a secret or key file that every user of
// the machine can read.
func warnWorldReadable(c *collector, path, name string, info os.FileInfo) {
	if info.Mode().Perm()&0o004 != 0 {
		c.warn(path, "%s is readable by every user (mode %04o); restrict it, e.g. chmod 600 (Kubernetes: defaultMode 0400)", name, info.Mode().Perm())
	}
}

// warnWorldReadableFile is warnWorldReadable for a file name.
func warnWorldReadableFile(c *collector, path, name string) {
	if info, err := os.Stat(name); err == nil {
		warnWorldReadable(c, path, name, info)
	}
}

// checkClientSecret fills in idp.ResolvedClientSecret from client_secret
// or client_secret_file, of which at most one may be set.
func (f *File) checkClientSecret(c *collector, path string, idp *IdP) {
	idp.ResolvedClientSecret = idp.ClientSecret
	if idp.ClientSecretFile == "" {
		return
	}
	if idp.ClientSecret != "" {
		c.add(path+".client_secret_file", "set client_secret or client_secret_file, not both")
		return
	}
	secret, ok := f.readSecretFile(c, path+".client_secret_file", &idp.ClientSecretFile)
	if !ok {
		return
	}
	if strings.ContainsAny(secret, "\r\n") {
		c.add(path+".client_secret_file", "%s: holds more than one line; a client secret is one line", idp.ClientSecretFile)
		return
	}
	idp.ResolvedClientSecret = secret
}

// sessionSecret is one session secret and where it came from.
type sessionSecret struct {
	value string
	path  string // YAML path for messages
	where string // "" or "line N of the file: "
}

// sessionSecrets returns the session secrets: the secrets list, or the
// lines of secrets_file, of which at most one may be set. Blank lines in
// the file are skipped.
func (f *File) sessionSecrets(c *collector) []sessionSecret {
	s := &f.Session
	var secrets []sessionSecret
	if s.SecretsFile == "" {
		for i, secret := range s.Secrets {
			secrets = append(secrets, sessionSecret{value: secret, path: indexPath("session.secrets", i)})
		}
		return secrets
	}
	if len(s.Secrets) > 0 {
		c.add("session.secrets_file", "set secrets or secrets_file, not both")
		return nil
	}
	content, ok := f.readSecretFile(c, "session.secrets_file", &s.SecretsFile)
	if !ok {
		return nil
	}
	for i, line := range strings.Split(content, "\n") {
		if line = strings.TrimRight(line, "\r"); line == "" {
			continue
		}
		secrets = append(secrets, sessionSecret{value: line, path: "session.secrets_file", where: fmt.Sprintf("line %d of the file: ", i+1)})
	}
	return secrets
}

// SecretFiles are the files secrets are read from (absolute after
// Validate): a change to one of them is a reason to reload.
func (f *File) SecretFiles() []string {
	var files []string
	for _, idp := range f.IdPs {
		if idp.ClientSecretFile != "" {
			files = append(files, idp.ClientSecretFile)
		}
	}
	if f.Session.SecretsFile != "" {
		files = append(files, f.Session.SecretsFile)
	}
	// A rotation of the assertion keys is a reload (issue 19).
	for _, name := range []string{f.Assertion.SigningKeyFile, f.Assertion.NextSigningKeyFile, f.Assertion.PreviousSigningKeyFile} {
		if name != "" {
			files = append(files, name)
		}
	}
	return files
}
