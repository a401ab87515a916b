package store

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

func avS(s string) types.AttributeValue  { return &types.AttributeValueMemberS{Value: s} }
func avB(b []byte) types.AttributeValue  { return &types.AttributeValueMemberB{Value: b} }
func avBool(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }
func avN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func avF(f float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'f', -1, 64)}
}
func avTime(t time.Time) types.AttributeValue { return avN(t.UnixNano()) }

// ttlSeconds is the epoch second DynamoDB TTL deletes an item after,
// rounded up so that TTL never removes an item before it expires.
func ttlSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// putTime sets a time attribute (unix nanoseconds), omitting zero times.
func putTime(it item, name string, t time.Time) {
	if !t.IsZero() {
		it[name] = avTime(t)
	}
}

func putS(it item, name, v string) {
	if v != "" {
		it[name] = avS(v)
	}
}

func getS(it item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getB(it item, name string) []byte {
	if v, ok := it[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

func getBool(it item, name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func numberOf(av types.AttributeValue) (string, bool) {
	v, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func getN(it item, name string) int64 {
	s, ok := numberOf(it[name])
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // a number written as a float by another tool
		f, _ := strconv.ParseFloat(s, 64)
		return int64(f)
	}
	return n
}

func getF(av types.AttributeValue) float64 {
	s, _ := numberOf(av)
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func getTime(it item, name string) time.Time {
	if _, ok := it[name]; !ok {
		return time.Time{}
	}
	return time.Unix(0, getN(it, name)).UTC()
}

func getStrings(it item, name string) []string {
	l, ok := it[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

// expr collects expression attribute names and values. Every attribute name
// goes through a placeholder: several of ours ("ttl", "name", "level") are
// DynamoDB reserved words, and profile map keys are arbitrary text.
type expr struct {
	names  map[string]string // placeholder → name
	byName map[string]string // name → placeholder
	values item
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, byName: map[string]string{}, values: item{}}
}

// n returns the placeholder of an attribute name.
func (e *expr) n(name string) string {
	if p, ok := e.byName[name]; ok {
		return p
	}
	p := "#n" + strconv.Itoa(len(e.names))
	e.names[p], e.byName[name] = name, p
	return p
}

// v returns the placeholder of a new value.
func (e *expr) v(av types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = av
	return p
}

// valuesOrNil returns nil for no values: DynamoDB rejects an empty map.
func (e *expr) valuesOrNil() item {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

func (e *expr) namesOrNil() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

// update renders an update expression from its clauses.
func update(set, add, remove []string) string {
	var b strings.Builder
	for _, part := range []struct {
		verb    string
		clauses []string
	}{{"SET", set}, {"ADD", add}, {"REMOVE", remove}} {
		if len(part.clauses) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(part.verb + " " + strings.Join(part.clauses, ", "))
	}
	return b.String()
}
