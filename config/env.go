package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandTree replaces ${NAME} and ${NAME:-default} with values from lookup,
// and "$$" with a literal "$", in the value of every scalar of the parsed
// document, in place. A "$" followed by anything else is kept as is. The
// default is used when NAME is unset or empty, as in the shell.
//
// Expansion runs after parsing, on one scalar at a time, so a value can
// never change the document's structure (a newline or ": " in a secret
// stays inside that secret) and is never unescaped a second time (a
// "\x41" in a value stays those four characters). Comments are not
// expanded at all. Keys are not expanded either: a "${" in a key is
// reported, since it can only be a mistake.
//
// A scalar that contained a reference is read according to the field it
// lands in, whatever its quoting: "${PORT}" fills an integer field, and a
// value of "null" or "~" is text, never YAML's null. The one exception
// keeps the shell's feel: an unquoted reference that expands to nothing
// leaves the key at its default, as an empty value does.
//
// Problems (an unset variable without a default, a malformed reference)
// are reported at the scalar's YAML path and line. Unset variables expand
// to the empty string so that decoding can go on and report the file's
// other problems too; the path is marked failed, so validation does not
// repeat the problem.
func expandTree(n *yaml.Node, path string, lookup func(string) (string, bool), c *collector) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			expandTree(child, path, lookup, c)
		}
	case yaml.SequenceNode:
		for i, child := range n.Content {
			expandTree(child, indexPath(path, i), lookup, c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			valuePath := path // merged keys (<<) land in this mapping
			if !isMergeKey(key) {
				valuePath = joinPath(path, key.Value)
			}
			if key.Kind == yaml.ScalarNode && strings.Contains(key.Value, "${") {
				c.addAt(valuePath, key.Line, "keys are not expanded: ${...} may only appear in values")
			}
			expandTree(value, valuePath, lookup, c)
		}
	case yaml.ScalarNode:
		expandScalar(n, path, lookup, c)
	}
	// Aliases are not followed: their anchor was expanded where it is
	// defined, exactly once.
}

// expandScalar expands one scalar's value and re-derives its tag.
func expandScalar(n *yaml.Node, path string, lookup func(string) (string, bool), c *collector) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	value, hadRef := expandString(n.Value, lookup, func(format string, args ...any) {
		c.addAt(pathOrRoot(path), n.Line, format, args...)
	})
	n.Value = value
	if !hadRef || n.Style&yaml.TaggedStyle != 0 {
		return // "$$" only, or an explicit tag such as !!str: keep the tag
	}
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if value == "" && !quoted {
		n.Tag = "!!null"
		return
	}
	// Resolve the tag as YAML resolves a plain scalar (ShortTag does that
	// for an untagged, unquoted node), but never to null.
	style := n.Style
	n.Tag, n.Style = "", 0
	tag := n.ShortTag()
	if tag == "!!null" {
		tag = "!!str"
	}
	n.Tag, n.Style = tag, style
}

// expandString expands the references in s. It reports whether s held at
// least one ${...} reference (as opposed to only "$$" escapes), and each
// problem through report. A substituted value is never expanded again.
func expandString(s string, lookup func(string) (string, bool), report func(format string, args ...any)) (string, bool) {
	var out strings.Builder
	out.Grow(len(s))
	hadRef := false
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i+1 >= len(s) {
			out.WriteString(s)
			return out.String(), hadRef
		}
		out.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			out.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			out.WriteByte('$')
			s = s[i+1:]
			continue
		}
		hadRef = true
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			report("unterminated %q (write $$ for a literal $)", shorten(s[i:]))
			out.WriteString(s[i:])
			return out.String(), hadRef
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			report("invalid reference %q: a name is letters, digits and _ (write $$ for a literal $)", shorten("${"+ref+"}"))
			continue
		}
		value, set := lookup(name)
		switch {
		case hasDefault && value == "":
			value = def
		case !set:
			report("${%s} is not set", name)
		}
		out.WriteString(value)
	}
}

// shorten bounds text quoted from the file in a message. Only the file's
// own text is ever quoted, never a variable's value.
func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// validEnvName reports whether name is a portable environment variable
// name: a letter or underscore, then letters, digits and underscores.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
