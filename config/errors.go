package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pseudo paths for problems that belong to no YAML key.
const (
	// PathYAML is the path of YAML syntax problems.
	PathYAML = "(yaml)"
	// PathFile is the path of problems reading the file itself.
	PathFile = "(file)"
	// PathRoot is the path of problems with the top-level mapping.
	PathRoot = "(root)"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the problem: a YAML path such as "routes[2].upstream",
	// or one of PathYAML, PathFile and PathRoot. (Problems with ${VAR}
	// references are reported at the path of the value holding them.)
	Path string
	// Message says what is wrong, without repeating the path.
	Message string
	// Line is the 1-based line of the file the problem is at, or 0 when it
	// is not known (a required key that is missing from the top level, or
	// a File that was not parsed from YAML).
	Line int
}

// String formats the problem as "path (line N): message", leaving out the
// line when it is not known.
func (p Problem) String() string {
	if p.Line > 0 {
		return p.Path + " (line " + strconv.Itoa(p.Line) + "): " + p.Message
	}
	return p.Path + ": " + p.Message
}

// Errors is every problem found in a configuration, in the order they
// appear in the file. Load, Parse and Validate return it as their error.
type Errors struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems during decoding and validation. It knows the
// line of every decoded path, so validation problems get a line for free,
// and which paths failed to decode, so validation does not report a second
// problem for a value that was never read.
type collector struct {
	problems []Problem
	// order is the sort key of each problem: twice its line, or for a
	// missing key twice the last line of its parent block plus one, so
	// that it sorts after everything that block does contain.
	order  []int
	lines  map[string]int // path → first line of its value
	ends   map[string]int // path → last line within its value
	failed map[string]bool
	// warnings are kept apart from problems: they do not fail the load.
	warnings  []Problem
	warnOrder []int
}

func newCollector() *collector {
	return &collector{lines: map[string]int{}, ends: map[string]int{}, failed: map[string]bool{}}
}

// see records that the value at path starts at line, unless it was seen
// before, and extends the blocks of path and its parents to line.
func (c *collector) see(path string, line int) {
	if _, ok := c.lines[path]; !ok && path != "" {
		c.lines[path] = line
	}
	for p := path; ; p = parentPath(p) {
		c.ends[p] = max(c.ends[p], line)
		if p == "" {
			return
		}
	}
}

// addAt records a problem at a known line and marks path as failed.
func (c *collector) addAt(path string, line int, format string, args ...any) {
	c.failed[path] = true
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: line})
	c.order = append(c.order, 2*line)
}

// add records a validation problem unless path, or a parent of it, already
// failed to decode. The line is that of path or of its nearest parent.
func (c *collector) add(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if c.failed[p] {
			return
		}
		if p == "" {
			break
		}
	}
	line, order := c.position(path)
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: line})
	c.order = append(c.order, order)
}

// warn records a warning at path, with the line of path or its parent.
func (c *collector) warn(path, format string, args ...any) {
	line, order := c.position(path)
	c.warnings = append(c.warnings, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: line})
	c.warnOrder = append(c.warnOrder, order)
}

// position returns the line shown for a problem at path and its sort key.
// A path missing from the file takes the line of its nearest parent, and
// sorts at the end of that parent's block.
func (c *collector) position(path string) (line, order int) {
	if line, ok := c.lines[path]; ok {
		return line, 2 * line
	}
	for p := parentPath(path); ; p = parentPath(p) {
		if line, ok := c.lines[p]; ok || p == "" {
			return line, 2*c.ends[p] + 1
		}
	}
}

// err returns the problems in file order (stable, so problems at one
// position keep the order they were found in), or nil when there are none.
func (c *collector) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &Errors{Problems: inFileOrder(c.problems, c.order)}
}

// warningList returns the warnings in file order, or nil.
func (c *collector) warningList() []Problem {
	if len(c.warnings) == 0 {
		return nil
	}
	return inFileOrder(c.warnings, c.warnOrder)
}

// inFileOrder sorts problems by their sort keys, stably.
func inFileOrder(problems []Problem, order []int) []Problem {
	index := make([]int, len(problems))
	for i := range index {
		index[i] = i
	}
	sort.SliceStable(index, func(i, j int) bool { return order[index[i]] < order[index[j]] })
	sorted := make([]Problem, len(index))
	for i, k := range index {
		sorted[i] = problems[k]
	}
	return sorted
}

// parentPath strips the last ".key" or "[i]" from a YAML path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// joinPath appends key to a YAML path. A key that is empty or would make
// the path ambiguous is quoted.
func joinPath(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\"\\ \t\r\n") || !utf8.ValidString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a YAML path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
