package audit

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"ztproxy/identity"
)

// MessageKey is the key of the record message in audit lines
// ("event": "decision").
const MessageKey = "event"

// handler writes JSON lines byte for byte as slog.NewJSONHandler does
// with the message key renamed to MessageKey, but encodes the kinds
// audit records use (strings, ints, floats, bools, string slices, risk
// reasons) without reflection: slog's generic path (json.Marshal for floats and slices) was
// most of the audit line's cost. A record with anything else, or a
// handler with groups, goes through slog's own JSON handler.
type handler struct {
	mu       *sync.Mutex // one Write per line, shared by the fallback
	out      io.Writer
	fallback slog.Handler
	prefix   []byte // pre-encoded WithAttrs, each with a leading comma
	slow     bool   // WithGroup or an unsupported WithAttrs value
}

var _ slog.Handler = (*handler)(nil)

// NewHandler returns the audit log's slog handler: one JSON object
// per line on w, the message under "event".
func NewHandler(w io.Writer) slog.Handler {
	mu := &sync.Mutex{}
	fb := slog.NewJSONHandler(lockedWriter{mu, w}, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.MessageKey {
			a.Key = MessageKey
		}
		return a
	}})
	return &handler{mu: mu, out: w, fallback: fb}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.fallback = h.fallback.WithAttrs(attrs)
	c.prefix = append([]byte(nil), h.prefix...)
	for _, a := range attrs {
		var ok bool
		if c.prefix, ok = appendAuditAttr(c.prefix, a); !ok {
			c.slow = true
		}
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.fallback = h.fallback.WithGroup(name)
	c.slow = true
	return &c
}

var auditBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if y := r.Time.Year(); h.slow || (!r.Time.IsZero() && (y < 0 || y >= 10000)) {
		return h.fallback.Handle(ctx, r)
	}
	bp := auditBufs.Get().(*[]byte)
	defer auditBufs.Put(bp)
	b := append((*bp)[:0], '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendJSONString(b, r.Level.String())
	b = append(b, `,"`+MessageKey+`":`...)
	b = appendJSONString(b, r.Message)
	b = append(b, h.prefix...)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAuditAttr(b, a)
		return ok
	})
	if !ok {
		return h.fallback.Handle(ctx, r)
	}
	b = append(b, '}', '\n')
	*bp = b
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.out.Write(b)
	return err
}

// appendAuditAttr appends `,"key":value` for the kinds it can encode
// exactly as slog's JSON handler does, and reports false otherwise.
func appendAuditAttr(b []byte, a slog.Attr) ([]byte, bool) {
	v := a.Value.Resolve()
	if a.Key == "" {
		// slog drops empty attributes and inlines empty-key groups.
		return b, v.Kind() != slog.KindGroup && v.Any() == nil
	}
	b = append(b, ',')
	b = appendJSONString(b, a.Key)
	b = append(b, ':')
	switch v.Kind() {
	case slog.KindString:
		return appendJSONString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return b, false
		}
		return appendJSONFloat(b, f), true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case []string:
			if x == nil {
				return append(b, "null"...), true
			}
			b = append(b, '[')
			for i, s := range x {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendMarshalString(b, s)
			}
			return append(b, ']'), true
		case []identity.RiskReason:
			if x == nil {
				return append(b, "null"...), true
			}
			b = append(b, '[')
			for i, r := range x {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"code":`...)
				b = appendMarshalString(b, r.Code)
				b = append(b, `,"points":`...)
				b = strconv.AppendInt(b, int64(r.Points), 10)
				b = append(b, '}')
			}
			return append(b, ']'), true
		}
	}
	return b, false
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString quotes s as slog's JSON handler does.
func appendJSONString(b []byte, s string) []byte {
	return appendQuoted(b, s, false)
}

// appendMarshalString quotes s as encoding/json does without HTML
// escaping (slog marshals []string that way): like appendJSONString, but
// \b and \f get their short escapes.
func appendMarshalString(b []byte, s string) []byte {
	return appendQuoted(b, s, true)
}

const hexDigits = "0123456789abcdef"

func appendQuoted(b []byte, s string, shortBF bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case shortBF && c == '\b':
				b = append(b, '\\', 'b')
			case shortBF && c == '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
