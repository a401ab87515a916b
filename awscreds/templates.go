package awscreds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// templateData is everything a session tag or session policy template may
// reference. It is deliberately a flat struct of strings so templates cannot
// reach into the principal or call methods.
type templateData struct {
	Email, Sub, Groups, DeviceID, RiskLevel, Route string
}

// Bits of fieldSet, one per templateData field.
const (
	fieldEmail fieldSet = 1 << iota
	fieldSub
	fieldGroups
	fieldDeviceID
	fieldRiskLevel
	fieldRoute
	allFields = fieldEmail | fieldSub | fieldGroups | fieldDeviceID | fieldRiskLevel | fieldRoute
)

// fieldSet records which templateData fields a role's templates read; only
// those fields enter the cache key.
type fieldSet uint8

var fieldBits = map[string]fieldSet{
	"Email": fieldEmail, "Sub": fieldSub, "Groups": fieldGroups,
	"DeviceID": fieldDeviceID, "RiskLevel": fieldRiskLevel, "Route": fieldRoute,
}

// fieldBounds are the worst-case lengths Validate assumes per field: RFC 5321
// for email, OIDC's 255 for sub; groups beyond a tag value could never fit.
var fieldBounds = map[string]int{
	"Email": 254, "Sub": 255, "Groups": MaxTagValueLen, "DeviceID": 128, "RiskLevel": 6, "Route": 64,
}

const fieldBoundsDoc = "Email 254, Sub 255, Groups 256, DeviceID 128, RiskLevel 6, Route 64 characters"

// tagValuePattern is STS's pattern for tag keys and values.
var tagValuePattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func sampleData() templateData {
	return templateData{
		Email: "jane.doe@example.com", Sub: "248289761001", Groups: "engineering:aws-analysts",
		DeviceID: "laptop-0042", RiskLevel: "low", Route: "analytics",
	}
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	return t, nil
}

// literalLen is the length of the template's literal text.
func literalLen(t *template.Template) int {
	n := 0
	for _, node := range t.Root.Nodes {
		if text, ok := node.(*parse.TextNode); ok {
			n += utf8.RuneCount(text.Text)
		}
	}
	return n
}

// worstCaseLen estimates the longest rendering of a template made only of
// text and {{.Field}} actions. ok is false for anything more complex.
func worstCaseLen(t *template.Template) (n int, ok bool) {
	for _, node := range t.Root.Nodes {
		switch node := node.(type) {
		case *parse.TextNode:
			n += utf8.RuneCount(node.Text)
		case *parse.ActionNode:
			name, simple := simpleField(node)
			if !simple {
				return 0, false
			}
			n += fieldBounds[name]
		default:
			return 0, false
		}
	}
	return n, true
}

// simpleField reports whether an action is exactly {{.Name}}.
func simpleField(a *parse.ActionNode) (string, bool) {
	if len(a.Pipe.Decl) != 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	f, ok := a.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	return f.Ident[0], true
}

// fieldsUsed returns the fields a template reads. Anything that can see the
// whole data value (a bare dot, a variable) counts as reading every field.
func fieldsUsed(t *template.Template) fieldSet {
	if t == nil || t.Tree == nil {
		return 0
	}
	var used fieldSet
	var walk func(parse.Node)
	walk = func(node parse.Node) {
		switch node := node.(type) {
		case nil, *parse.TextNode, *parse.CommentNode, *parse.StringNode, *parse.NumberNode,
			*parse.BoolNode, *parse.NilNode, *parse.IdentifierNode, *parse.BreakNode, *parse.ContinueNode:
		case *parse.ListNode:
			if node != nil {
				for _, n := range node.Nodes {
					walk(n)
				}
			}
		case *parse.ActionNode:
			walk(node.Pipe)
		case *parse.PipeNode:
			if node != nil {
				for _, c := range node.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range node.Args {
				walk(a)
			}
		case *parse.FieldNode:
			used |= fieldBits[node.Ident[0]]
		case *parse.IfNode:
			walk(node.Pipe)
			walk(node.List)
			walk(node.ElseList)
		case *parse.RangeNode:
			walk(node.Pipe)
			walk(node.List)
			walk(node.ElseList)
		case *parse.WithNode:
			walk(node.Pipe)
			walk(node.List)
			walk(node.ElseList)
		default: // DotNode, VariableNode, ChainNode, TemplateNode
			used = allFields
		}
	}
	walk(t.Root)
	return used
}

// renderTag executes a tag value template and checks the result against
// STS's rules. A value with a character STS refuses is an error, not
// rewritten: "a*b@x" made "a_b@x" would be another user's tag.
func renderTag(t *template.Template, data templateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering: %w", err)
	}
	value := b.String()
	if !tagValuePattern.MatchString(value) {
		return "", fmt.Errorf("%w: rendered value %q has characters outside STS's tag set [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]", ErrTemplateInput, value)
	}
	if n := utf8.RuneCountInString(value); n > MaxTagValueLen {
		return "", fmt.Errorf("rendered value is %d characters, STS allows at most %d", n, MaxTagValueLen)
	}
	return value, nil
}

// renderPolicy executes a session policy template with JSON-escaped data and
// returns the compacted policy.
func renderPolicy(t *template.Template, data templateData) (string, error) {
	escaped := templateData{
		Email: jsonEscape(data.Email), Sub: jsonEscape(data.Sub), Groups: jsonEscape(data.Groups),
		DeviceID: jsonEscape(data.DeviceID), RiskLevel: jsonEscape(data.RiskLevel), Route: jsonEscape(data.Route),
	}
	var b bytes.Buffer
	if err := t.Execute(&b, escaped); err != nil {
		return "", fmt.Errorf("rendering: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b.Bytes()); err != nil {
		return "", fmt.Errorf("not valid JSON after templating: %w", err)
	}
	for _, r := range compact.String() {
		if r > 0xFF {
			return "", fmt.Errorf("contains %q; STS accepts only characters up to U+00FF", r)
		}
	}
	if compact.Len() > MaxSessionPolicyLen {
		return "", fmt.Errorf("is %d characters after templating, STS allows at most %d", compact.Len(), MaxSessionPolicyLen)
	}
	return compact.String(), nil
}

// jsonEscape escapes s for use inside a JSON string literal. Non-ASCII
// becomes \u escapes so the policy stays within STS's character range.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7E:
			if r > 0xFFFF {
				r1, r2 := utf16Pair(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
