package config

import (
	"bytes"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in the raw file text with
// values from lookup, and "$$" with a literal "$". A "$" followed by
// anything else is kept as is. The default is used when NAME is unset or
// empty, as in the shell.
//
// Lines whose first non-blank character is "#" are copied untouched, so
// that a comment may mention ${ZTP_SESSION_SECRET} without the variable
// having to be set. Values are inserted verbatim, not YAML-quoted: quote
// the reference ("${SECRET}") when a value may contain YAML syntax.
//
// Every unset variable without a default and every malformed reference is
// reported under PathEnv; unset variables expand to the empty string so
// that decoding can go on and report the file's other problems too.
func expandEnv(src []byte, lookup func(string) (string, bool), c *collector) []byte {
	var out bytes.Buffer
	out.Grow(len(src))
	reported := map[string]bool{}
	for lineNo, line := range bytes.SplitAfter(src, []byte("\n")) {
		if trimmed := bytes.TrimLeft(line, " \t"); len(trimmed) > 0 && trimmed[0] == '#' {
			out.Write(line)
			continue
		}
		expandLine(&out, string(line), lineNo+1, lookup, c, reported)
	}
	return out.Bytes()
}

// expandLine expands the references of one line into out.
func expandLine(out *bytes.Buffer, line string, lineNo int, lookup func(string) (string, bool), c *collector, reported map[string]bool) {
	for {
		i := strings.IndexByte(line, '$')
		if i < 0 || i+1 >= len(line) {
			out.WriteString(line)
			return
		}
		out.WriteString(line[:i])
		switch line[i+1] {
		case '$':
			out.WriteByte('$')
			line = line[i+2:]
			continue
		case '{':
		default:
			out.WriteByte('$')
			line = line[i+1:]
			continue
		}
		end := strings.IndexByte(line[i:], '}')
		if end < 0 {
			c.addAt(PathEnv, lineNo, "unterminated %q (write $$ for a literal $)", strings.TrimRight(line[i:], "\r\n"))
			out.WriteString(line[i:])
			return
		}
		ref := line[i+2 : i+end]
		line = line[i+end+1:]
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			c.addAt(PathEnv, lineNo, "invalid reference %q: a name is letters, digits and _ (write $$ for a literal $)", "${"+ref+"}")
			continue
		}
		value, set := lookup(name)
		switch {
		case hasDefault && value == "":
			value = def
		case !set:
			if !reported[name] {
				reported[name] = true
				c.addAt(PathEnv, lineNo, "${%s} is not set", name)
			}
		}
		out.WriteString(value)
	}
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
