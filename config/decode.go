package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits on decoding. Aliases and merge keys let a small document expand
// to a huge one (the "billion laughs" attack) or refer to itself; a real
// configuration is a few thousand nodes, a handful of levels deep.
const (
	maxDecodeSteps = 1 << 17
	maxDecodeDepth = 64
)

var durationType = reflect.TypeFor[time.Duration]()

// decoder decodes a yaml.Node tree into the schema structs by hand rather
// than with yaml.v3's Decode, so that it can report every unknown key and
// every bad value, each with its path and line, instead of stopping at the
// first.
type decoder struct {
	c      *collector
	steps  int
	depth  int
	failed bool // a limit was hit and reported
	fields map[reflect.Type]map[string]int
}

// overLimit counts a step and reports whether decoding must stop.
func (d *decoder) overLimit(n *yaml.Node) bool {
	d.steps++
	if !d.failed && (d.steps > maxDecodeSteps || d.depth > maxDecodeDepth) {
		d.failed = true
		d.c.addAt(PathYAML, n.Line, "document too large, too deeply nested or aliased too often")
	}
	return d.failed
}

// decodeDocument parses data as one YAML document, expands ${NAME}
// references in its scalar values (see expandTree) and decodes it into f.
// It reports whether decoding got far enough for validation to be useful.
func decodeDocument(data []byte, f *File, lookup func(string) (string, bool), c *collector) bool {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return true // An empty file: every key keeps its default.
		}
		addYAMLError(c, err)
		return false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		c.addAt(PathYAML, extra.Line, "only one YAML document is allowed")
		return false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode && !(root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		// Nothing was decoded, so every required key would be reported
		// missing: noise on top of the one real problem.
		c.addAt(PathRoot, root.Line, "must be a mapping, not %s", describe(root))
		return false
	}
	expandTree(root, "", lookup, c)
	d := &decoder{c: c, fields: map[reflect.Type]map[string]int{}}
	d.decode(root, reflect.ValueOf(f).Elem(), "")
	return !d.failed
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// addYAMLError reports a yaml.v3 syntax error, taking the line out of the
// message into Problem.Line.
func addYAMLError(c *collector, err error) {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		c.addAt(PathYAML, line, "%s", m[2])
		return
	}
	c.addAt(PathYAML, 0, "%s", strings.TrimPrefix(msg, "yaml: "))
}

// decode stores node into v, which is addressable. A null node leaves v as
// it is, so that defaults survive "key:" with no value.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.depth++
	defer func() { d.depth-- }()
	if d.overLimit(n) {
		return
	}
	d.c.see(path, n.Line)
	line := n.Line
	for n.Kind == yaml.AliasNode {
		if n = n.Alias; n == nil || d.overLimit(n) {
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch {
	case v.Type() == durationType:
		d.decodeDuration(n, v, path, line)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path, line)
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if def, ok := v.Interface().(defaulter); ok {
				def.setDefaults()
			}
		}
		d.decode(n, v.Elem(), path)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path, line)
	case v.Kind() == reflect.Map:
		d.decodeMap(n, v, path, line)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.c.addAt(path, line, "must be a string, not a %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || err != nil {
			d.c.addAt(path, line, "must be true or false, not %s", describe(n))
			return
		}
		v.SetBool(b)
	case v.CanInt():
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.c.addAt(path, line, "must be an integer, not %s", describe(n))
			return
		}
		v.SetInt(i)
	case v.CanFloat():
		// Issue 19 (tracing.sample_ratio): a plain YAML number, 1 as well as 0.5.
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil ||
			math.IsNaN(f) || math.IsInf(f, 0) {
			d.c.addAt(path, line, "must be a number, not %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if the schema gains a field of a new kind.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// decodeDuration parses a Go duration string such as "30s" or "1h30m".
func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.ScalarNode {
		d.c.addAt(path, line, "must be a duration such as \"30s\", not a %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.c.addAt(path, line, "invalid duration %q: use a number with a unit, such as \"30s\" or \"1h30m\"", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// decodeStruct decodes a mapping into a struct, reporting unknown and
// repeated keys. Keys merged in with "<<" are applied first so that the
// mapping's own keys win wherever they are written.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.c.addAt(pathOrRoot(path), line, "must be a mapping, not %s", describe(n))
		return
	}
	fields := d.fields[v.Type()]
	if fields == nil {
		fields = yamlFields(v.Type())
		d.fields[v.Type()] = fields
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.decodeMerge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if isMergeKey(key) {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.c.addAt(pathOrRoot(path), key.Line, "keys must be strings, not a %s", kindName(key))
			continue
		}
		keyPath := joinPath(path, key.Value)
		if seen[key.Value] {
			d.c.addAt(keyPath, key.Line, "duplicate key")
			continue
		}
		seen[key.Value] = true
		index, ok := fields[key.Value]
		if !ok {
			d.c.addAt(keyPath, key.Line, "unknown key")
			continue
		}
		// The file's own keys win over merged ones for the line, too.
		delete(d.c.lines, keyPath)
		d.c.see(keyPath, key.Line)
		d.decode(value, v.Field(index), keyPath)
	}
}

// decodeMerge applies a "<<" value: one mapping or a list of them.
func (d *decoder) decodeMerge(n *yaml.Node, v reflect.Value, path string) {
	d.depth++
	defer func() { d.depth-- }()
	if d.overLimit(n) {
		return
	}
	line := n.Line
	for n.Kind == yaml.AliasNode {
		if n = n.Alias; n == nil || d.overLimit(n) {
			return
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.decode(n, v, path)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			d.decodeMerge(item, v, path)
		}
	default:
		d.c.addAt(pathOrRoot(path), line, "a merge key (<<) needs a mapping or a list of mappings")
	}
}

// decodeSlice decodes a sequence, starting each element from its defaults.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.SequenceNode {
		d.c.addAt(path, line, "must be a list, not %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := out.Index(i)
		if def, ok := elem.Addr().Interface().(defaulter); ok {
			def.setDefaults()
		}
		d.decode(item, elem, indexPath(path, i))
	}
	v.Set(out)
}

// decodeMap decodes a mapping with string keys into a map.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.c.addAt(path, line, "must be a mapping, not %s", describe(n))
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode || isMergeKey(key) {
			d.c.addAt(path, key.Line, "keys must be strings")
			continue
		}
		keyPath := joinPath(path, key.Value)
		if out.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.c.addAt(keyPath, key.Line, "duplicate key")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(value, elem, keyPath)
		out.SetMapIndex(reflect.ValueOf(key.Value), elem)
	}
	v.Set(out)
}

// yamlFields maps the yaml tag names of a struct to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge"
}

// pathOrRoot names the top level in problems about the document itself.
func pathOrRoot(path string) string {
	if path == "" {
		return PathRoot
	}
	return path
}

// kindName names a node kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "scalar"
	}
}

// describe shows a node in a message: scalars by value (shortened), other
// kinds by name.
func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return "a " + kindName(n)
	}
	value := n.Value
	if len(value) > 40 {
		value = value[:40] + "…"
	}
	return strconv.Quote(value)
}
