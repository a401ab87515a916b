package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Report collects the problems and notes of the start-up steps that come
// after Build: the components serve constructs from a Runtime (TLS
// material, verifiers, the store, the risk engine, listeners). Each
// problem gets the line of its YAML path, so check-config and serve print
// "tls.client_ca_file (line 7): …" for them as for validation problems.
type Report struct {
	c        *collector
	notes    []Problem
	warnings []Problem
}

// NewReport starts a report that knows the lines of rt's file and holds
// its warnings.
func (rt *Runtime) NewReport() *Report {
	c := newCollector()
	if rt.lines != nil {
		c.lines, c.ends = rt.lines.lines, rt.lines.ends
	}
	return &Report{c: c, warnings: rt.File.Warnings}
}

// Warnings are the file's warnings (File.Warnings).
func (r *Report) Warnings() []Problem { return r.warnings }

// Add records err at path: one problem per joined error. A component's
// message that starts with a YAML path of its own (certs says
// "tls.client_ca_file /x.pem: …") is reported at that path instead. A nil
// err records nothing.
func (r *Report) Add(path string, err error) {
	if err != nil {
		addErr(r.c, path, err)
	}
}

// Addf records one problem at path.
func (r *Report) Addf(path, format string, args ...any) {
	r.c.add(path, format, args...)
}

// Note records something that is not a problem but that check-config
// cannot prove, such as a listen address being free when serve starts.
func (r *Report) Note(path, format string, args ...any) {
	line, _ := r.c.position(path)
	r.notes = append(r.notes, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: line})
}

// Failed reports whether any problem was recorded.
func (r *Report) Failed() bool { return len(r.c.problems) > 0 }

// Err returns the problems as an *Errors in file order, or nil.
func (r *Report) Err() error { return r.c.err() }

// Notes returns the notes in file order.
func (r *Report) Notes() []Problem {
	order := make([]int, len(r.notes))
	for i, n := range r.notes {
		order[i] = n.Line
	}
	return inFileOrder(r.notes, order)
}

// componentPrefixes are the package prefixes components put on their
// errors; they say nothing to someone reading a config problem.
var componentPrefixes = []string{
	"authn: ", "authz: ", "awscreds: ", "certs: ", "proxy: ", "riskengine: ", "store: ",
	"config rejected: ", "bearer config: ", "browser sign-in: ",
}

// leadingPath matches a nested YAML path at the start of a message,
// followed by ": " or " " (certs: "tls.cert_file /x.pem: …").
var leadingPath = regexp.MustCompile(`^([a-z_]+(?:\[[0-9]+\])?(?:\.[a-z_]+(?:\[[0-9]+\])?)*)(: | )`)

// refinePath strips component prefixes from msg and, when what remains
// starts with a YAML path (one of the file's top-level keys, nested, or
// followed by ": "), moves the problem there.
func refinePath(path, msg string) (string, string) {
	for trimmed := true; trimmed; {
		trimmed = false
		for _, p := range componentPrefixes {
			if strings.HasPrefix(msg, p) {
				msg, trimmed = msg[len(p):], true
			}
		}
	}
	m := leadingPath.FindStringSubmatch(msg)
	if m == nil || !topKeys[topKey(m[1])] {
		return path, msg
	}
	if m[2] == " " && !strings.ContainsAny(m[1], ".[") {
		return path, msg // a word such as "session codec", not a path
	}
	return m[1], msg[len(m[0]):]
}

// topKeys are the top-level keys of the file.
var topKeys = func() map[string]bool {
	keys := map[string]bool{}
	for name := range yamlFields(reflect.TypeFor[File]()) {
		keys[name] = true
	}
	return keys
}()

// topKey is the first segment of a YAML path.
func topKey(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// addErr records err at path, one problem per joined error, with
// component prefixes removed and the path refined as Report.Add does.
func addErr(c *collector, path string, err error) {
	for _, msg := range splitErrors(err) {
		p, m := refinePath(path, msg)
		c.add(p, "%s", m)
	}
}
