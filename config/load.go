package config

import (
	"os"
	"path/filepath"
	"time"
)

// Options are the outside checks and sources Load, Parse and Validate use.
// The zero value is usable: no policy check, the process environment.
type Options struct {
	// CheckPolicies, when set, parses the expanded policy files (absolute,
	// sorted) with the configured time zone and returns every problem, as
	// an errors.Join of errors formatted "file.cedar:LINE:COL: message".
	// Each is reported under the path "policies". It is a hook so that
	// config does not depend on the Cedar engine.
	CheckPolicies func(paths []string, loc *time.Location) error
	// LookupEnv resolves ${NAME} references; os.LookupEnv when nil.
	LookupEnv func(name string) (string, bool)
	// Override, when set, adjusts the decoded file before validation (the
	// command line's overrides, e.g. `ztproxy sidecar --upstream`).
	Override func(*File)
}

// Load reads the configuration file at path and returns it decoded,
// defaulted and validated; see Parse. Relative file names in the
// configuration are relative to the file's directory. The error, if any, is
// an *Errors.
func Load(path string, opts Options) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{Problems: []Problem{{Path: PathFile, Message: err.Error()}}}
	}
	return Parse(data, filepath.Dir(path), opts)
}

// Parse decodes data strictly on top of DefaultFile, expanding ${NAME}
// references in its values, and validates the result. Relative file names resolve
// against baseDir (the working directory when empty).
//
// Every problem found is returned at once as an *Errors, in file order; the
// File is returned only when there are none.
func Parse(data []byte, baseDir string, opts Options) (*File, error) {
	c := newCollector()
	f := parse(data, baseDir, opts, c)
	if f == nil {
		return nil, c.err()
	}
	return f, nil
}

// parse is Parse reporting to c; it returns nil when there are problems.
func parse(data []byte, baseDir string, opts Options, c *collector) *File {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	f := DefaultFile()
	if !decodeDocument(data, &f, lookup, c) {
		return nil
	}
	f.BaseDir = baseDir
	if opts.Override != nil {
		opts.Override(&f)
	}
	f.validate(opts, c)
	if len(c.problems) > 0 {
		return nil
	}
	return &f
}

// Validate checks f and reports every problem as an *Errors. Problems have
// no line numbers, since f did not come from a file; Parse and Load call
// the same checks with lines.
//
// Validate also brings f into its canonical form, which is what the rest of
// ztproxy expects: relative file names become absolute (against BaseDir,
// itself made absolute), route hosts and path prefixes are canonicalised,
// browser routes without an idp get the first one, and the derived fields
// (Location, PolicyFiles, TrustedProxyPrefixes, Session.SecretKeys) are
// filled in. It touches nothing outside f, and running it twice gives the
// same result.
func (f *File) Validate(opts Options) error {
	c := newCollector()
	f.validate(opts, c)
	return c.err()
}
