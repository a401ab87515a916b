package decide

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"regexp/syntax"
	"strings"
)

// MaxRewritePattern bounds a regex_rewrite pattern. RE2 runs in linear
// time, but a huge pattern still costs memory per route.
const MaxRewritePattern = 1024

// MaxRewriteProgram bounds the compiled size of a regex_rewrite pattern.
const MaxRewriteProgram = 5000

// PathRewrite changes the path a route forwards. Policy always sees the
// original canonical path; the rewritten one is what the upstream receives
// and what the audit line records as upstream_path.
type PathRewrite struct {
	// Prefix replaces the route's path_prefix ("/" + the rest of the path
	// is appended to it); "" when unused.
	Prefix string
	// Regex, when set, is applied to the whole forward path and every
	// match replaced with Substitution ($1, ${name}).
	Regex        *regexp.Regexp
	Substitution string
}

// errRewrite refuses a request whose rewritten path would be unsafe to
// forward (a ".." or empty segment, a control byte, "\" or "#"): the
// upstream could read it as a path policy never saw.
var errRewrite = &Error{Status: http.StatusBadRequest, Code: "bad_rewritten_path", Msg: "the route's path rewrite produced a path that cannot be forwarded"}

// CompileRegexRewrite checks a regex_rewrite pattern at load.
func CompileRegexRewrite(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("pattern: required")
	}
	if len(pattern) > MaxRewritePattern {
		return nil, fmt.Errorf("pattern: longer than %d bytes", MaxRewritePattern)
	}
	// RE2's time is linear in the path but also in the program's size,
	// and counted repetitions ("a{0,1000}" a hundred times) make programs
	// of hundreds of thousands of instructions that take a second to
	// compile and milliseconds per request: estimate the size from the
	// parse tree and refuse it before compiling.
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	if n := programSize(parsed); n > MaxRewriteProgram {
		return nil, fmt.Errorf("pattern: too complex (about %d instructions or more, at most %d; use fewer counted repetitions)", n, MaxRewriteProgram)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	return re, nil
}

// Rewrite returns the forward path p (canonical, decoded, starting with
// "/") as rewritten for a route with the given path_prefix. The result is
// checked with CheckForwardPath.
func (pr *PathRewrite) Rewrite(p, pathPrefix string) (string, error) {
	out := p
	if pr.Prefix != "" {
		rest := out
		if pathPrefix != "/" {
			rest = StripPathSegments(out, strings.Count(strings.TrimSuffix(pathPrefix, "/"), "/"))
		}
		out = strings.TrimSuffix(pr.Prefix, "/") + rest
		if out == "" {
			out = "/"
		}
	}
	if pr.Regex != nil {
		out = pr.Regex.ReplaceAllString(out, pr.Substitution)
	}
	if !CheckForwardPath(out) {
		return "", errRewrite
	}
	return out, nil
}

// CheckForwardPath reports whether a decoded path is safe to forward: it
// starts with "/", has no empty, "." or ".." segment (also not with
// ";parameters"), no control byte, "\", "#" or "%" (which, escaped again
// on the way out, an upstream might decode twice), and is at most 8 KiB.
func CheckForwardPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 8<<10 {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f, c == '\\', c == '#', c == '%':
			return false
		}
	}
	if p == "/" {
		return true
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		name, _, _ := strings.Cut(seg, ";")
		if name == "." || name == ".." {
			return false
		}
	}
	// An empty segment only as a trailing slash.
	return !strings.Contains(p, "//")
}

// programSize estimates the instructions RE2 compiles re to, from above
// (counted repetitions multiply); it stops counting past
// MaxRewriteProgram.
func programSize(re *syntax.Regexp) int {
	n := 1
	switch re.Op {
	case syntax.OpLiteral:
		n = len(re.Rune)
	case syntax.OpRepeat:
		count := max(re.Max, re.Min)
		if re.Max < 0 {
			count = re.Min + 1
		}
		n = (programSize(re.Sub[0]) + 1) * max(count, 1)
	default:
		for _, sub := range re.Sub {
			n += programSize(sub)
			if n > MaxRewriteProgram {
				break
			}
		}
	}
	return min(n, MaxRewriteProgram+1)
}
