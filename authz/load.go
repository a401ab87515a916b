package authz

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"
)

// PolicyFile is one named source of Cedar text. Name appears in error
// messages and generated policy ids; it is usually the file's path.
type PolicyFile struct {
	Name string
	Text []byte
}

// LoadFiles reads the policy files at paths (already glob-expanded by the
// caller) and returns their contents in the same order. Every file is
// attempted; the error joins one error per unreadable file, each naming its
// path.
func LoadFiles(paths []string) ([]PolicyFile, error) {
	files := make([]PolicyFile, 0, len(paths))
	var errs []error
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			// os errors already carry the path; the prefix says what we
			// were doing.
			errs = append(errs, fmt.Errorf("authz: read policy file: %w", err))
			continue
		}
		files = append(files, PolicyFile{Name: path, Text: text})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

// parseFile parses one file into its policies, in source order. A file that
// does not parse yields one error per broken statement, each formatted
// "name:LINE:COL: message", instead of only the first problem.
func parseFile(f PolicyFile) (cedar.PolicyList, []error) {
	list, err := parseList(f.Name, f.Text)
	if err == nil {
		return list, nil
	}
	// The Cedar parser stops at the first error. Re-parse each statement on
	// its own to report every broken one; fall back to the whole-file error
	// if that finds nothing (the splitter is only a heuristic).
	var errs []error
	for _, st := range splitStatements(f.Text) {
		if _, stErr := parseList(f.Name, st.text); stErr != nil {
			errs = append(errs, positionedError(f.Name, stErr, st.line, st.col))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, positionedError(f.Name, err, 1, 1))
	}
	return nil, errs
}

// parseList wraps cedar.NewPolicyListFromBytes and turns a panic inside the
// parser or compiler into an error, so that hostile policy text can never
// crash a config reload.
func parseList(name string, text []byte) (list cedar.PolicyList, err error) {
	defer func() {
		if r := recover(); r != nil {
			list, err = nil, fmt.Errorf("<input>:1:1: internal parser failure: %v", r)
		}
	}()
	return cedar.NewPolicyListFromBytes(name, text)
}

// cedarPosition matches the position cedar-go puts in its parse errors, for
// example `parse error at <input>:3:7 "foo": ...`.
var cedarPosition = regexp.MustCompile(`(?:parse error at )?<input>:(\d+):(\d+):? ?`)

// positionedError rewrites a cedar-go parse error of a statement that starts
// at line/col of the file into "name:LINE:COL: message". An error without a
// position is reported at the statement's start.
func positionedError(name string, err error, line, col int) error {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	errLine, errCol := 1, 1
	if m := cedarPosition.FindStringSubmatchIndex(msg); m != nil {
		errLine, _ = strconv.Atoi(msg[m[2]:m[3]])
		errCol, _ = strconv.Atoi(msg[m[4]:m[5]])
		rest := msg[m[1]:]
		if strings.HasPrefix(rest, `"`) {
			rest = "near " + rest
		}
		msg = msg[:m[0]] + rest
	}
	if errLine == 1 {
		errCol += col - 1
	}
	errLine += line - 1
	return fmt.Errorf("%s:%d:%d: %s", name, errLine, errCol, msg)
}

// statement is one ';'-terminated piece of a policy file and where it
// starts (1-based line and column).
type statement struct {
	text      []byte
	line, col int
}

// splitStatements splits Cedar text at every ';' outside string literals and
// comments. It is used only to find further errors after a failed parse.
func splitStatements(text []byte) []statement {
	var out []statement
	start, line, col := 0, 1, 1
	startLine, startCol := 1, 1
	inString, inComment, escaped := false, false, false
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		switch {
		case inComment:
			inComment = r != '\n'
		case inString:
			switch {
			case escaped:
				escaped = false
			case r == '\\':
				escaped = true
			case r == '"':
				inString = false
			}
		case r == '"':
			inString = true
		case r == '/' && i+1 < len(text) && text[i+1] == '/':
			inComment = true
		case r == ';':
			out = append(out, statement{text: text[start : i+size], line: startLine, col: startCol})
			start, startLine, startCol = i+size, line, col+1
		}
		i += size
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	if strings.TrimSpace(string(text[start:])) != "" {
		out = append(out, statement{text: text[start:], line: startLine, col: startCol})
	}
	return out
}
