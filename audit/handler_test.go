package audit

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/netip"
	"testing"
	"time"

	"ztproxy/identity"
)

// slogReference is the handler the audit log used before: slog's JSON
// handler with the message under "event".
func slogReference(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.MessageKey {
			a.Key = MessageKey
		}
		return a
	}})).With("log", "audit")
}

// sameAsSlog logs attrs through both handlers and wants identical bytes.
func sameAsSlog(t *testing.T, msg string, attrs ...slog.Attr) {
	t.Helper()
	var want, got bytes.Buffer
	at := time.Date(2026, 11, 29, 9, 30, 1, 987654321, time.FixedZone("x", 3600))
	for _, l := range []*slog.Logger{slogReference(&want), slog.New(NewHandler(&got)).With("log", "audit")} {
		r := slog.NewRecord(at, slog.LevelInfo, msg, 0)
		r.AddAttrs(attrs...)
		if err := l.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != want.String() {
		t.Errorf("audit handler differs from slog's JSON handler:\n got %s\nwant %s", got.String(), want.String())
	}
}

var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\b\f\x00\x1f\x7f", "<html> & 'apos'",
	"invalid \xff\xfe utf-8", "line\u2028para\u2029sep", "emoji 🙂 ü", "alice@example.com",
}

func TestAuditHandlerMatchesSlog(t *testing.T) {
	for _, s := range trickyStrings {
		sameAsSlog(t, "decision", slog.String("path", s), slog.String(s, "key"), slog.Any("policy_ids", []string{s, "x"}))
		sameAsSlog(t, s)
		sameAsSlog(t, "decision", slog.Any("risk_reasons", []identity.RiskReason{{Code: s, Points: 30}, {Code: "velocity", Points: -2}}))
	}
	var nilReasons []identity.RiskReason
	sameAsSlog(t, "decision", slog.Any("risk_reasons", nilReasons))
	for _, f := range []float64{0, 0.001, 0.123, 1.5, 12345.678, 1e-7, 1e21, 1e20, -3.25, math.Inf(1), math.NaN()} {
		sameAsSlog(t, "decision", slog.Float64("latency_ms", f))
	}
	var nilIDs []string
	sameAsSlog(t, "decision", slog.Any("policy_ids", nilIDs), slog.Any("step_up", []string{}), slog.Int("risk_score", -7),
		slog.Uint64("u", 7), slog.Bool("ok", true), slog.Duration("d", time.Second), slog.Time("t", time.Unix(5, 0)),
		slog.Group("g", slog.String("a", "b")), slog.Any("m", map[string]int{"a": 1}), slog.Attr{}, slog.String("", "empty key"))
}

// TestAuditHandlerLine checks one real audit record end to end.
func TestAuditHandlerLine(t *testing.T) {
	var got bytes.Buffer
	slog.New(NewHandler(&got)).With("log", "audit").LogAttrs(context.Background(), slog.LevelInfo, "decision",
		slog.String("request_id", "r1"), slog.Any("policy_ids", []string{"p1"}), slog.Int("status", 200), slog.Float64("latency_ms", 0.25))
	want := `,"level":"INFO","event":"decision","log":"audit","request_id":"r1","policy_ids":["p1"],"status":200,"latency_ms":0.25}` + "\n"
	if s := got.String(); len(s) < len(want) || s[len(s)-len(want):] != want || s[:9] != `{"time":"` {
		t.Fatalf("line %s", s)
	}
	if slog.New(NewHandler(&got)).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug records enabled")
	}
}

func FuzzAuditHandlerMatchesSlog(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, 1.5)
	}
	f.Fuzz(func(t *testing.T, s string, x float64) {
		sameAsSlog(t, s, slog.String(s, s), slog.Float64("f", x), slog.Any("ids", []string{s}),
			slog.Any("risk_reasons", []identity.RiskReason{{Code: s, Points: int(x)}}))
	})
}

func BenchmarkAuditHandler(b *testing.B) {
	var buf bytes.Buffer
	for name, l := range map[string]*slog.Logger{"slog-json": slogReference(&buf), "audit": slog.New(NewHandler(&buf)).With("log", "audit")} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				l.LogAttrs(context.Background(), slog.LevelInfo, "decision",
					slog.String("request_id", "0123456789abcdef"), slog.String("route", "app"), slog.String("method", "GET"),
					slog.String("host", "127.0.0.1"), slog.String("path", "/app/hello"), slog.String("client_ip", "127.0.0.1"),
					slog.String("auth", "browser"), slog.String("principal", "https://op.example|alice"), slog.String("email", "alice@ztp.test"),
					slog.String("decision", "allow"), slog.Any("policy_ids", []string{"eng-read", "admins"}), slog.Int("risk_score", 0),
					slog.String("risk_level", "low"), slog.Int("status", 200), slog.Float64("latency_ms", 0.412))
			}
		})
	}
}

// failingHandler fails the test if a record falls back to slog.
type failingHandler struct {
	slog.Handler
	t *testing.T
}

func (f failingHandler) Handle(_ context.Context, r slog.Record) error {
	f.t.Errorf("audit record %q took slog's reflective path", r.Message)
	return nil
}

// TestAuditLineTakesFastPath: a full decision record (email, device, risk
// reasons, step-up, error) is encoded by the audit handler itself.
func TestAuditLineTakesFastPath(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(&buf)).With("log", "audit")
	h := logger.Handler().(*handler)
	h.fallback = failingHandler{h.fallback, t}
	var rc identity.RequestContext
	rc.RequestID, rc.Route, rc.Method, rc.Host, rc.Path = "r1", "app", "GET", "app.example.com", "/x"
	rc.ClientIP = netip.MustParseAddr("192.0.2.1")
	rc.Principal = identity.Principal{ID: "iss#alice", Email: "alice@example.com", AuthKind: identity.AuthBrowser}
	rc.Device = identity.Device{Present: true, ID: "dev1", Fingerprint: "fp"}
	rc.Risk = identity.Risk{Score: 55, Level: identity.RiskMedium, Reasons: []identity.RiskReason{{Code: "velocity", Points: 30}}}
	decision := identity.Decision{PolicyIDs: []string{"admins-only"}, StepUp: []string{"mfa"}}
	rec := Record{Context: &rc, ClientIP: rc.ClientIP.String(), Decision: "deny", Policy: &decision, Error: "forbidden", Status: 403, Latency: 1500 * time.Microsecond}
	rec.Log(logger)
	for _, want := range []string{`"event":"decision"`, `"log":"audit"`, `"risk_reasons":[{"code":"velocity","points":30}]`,
		`"policy_ids":["admins-only"]`, `"step_up":["mfa"]`, `"device":"dev1"`, `"status":403`, `"latency_ms":1.5`} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("audit line lacks %s:\n%s", want, buf.String())
		}
	}
}
