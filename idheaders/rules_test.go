package idheaders

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"ztproxy/identity"
)

// Issue 18 (headers): what a route may not set or remove is refused at
// load, with the key named.
func TestCompileRulesRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		spec    RuleSpec
		request bool
		want    string
	}{
		"identity header":          {RuleSpec{Set: map[string]string{"X-Ztp-User": "{{.Email}}"}}, true, "X-Ztp-*"},
		"identity header, case":    {RuleSpec{Set: map[string]string{"x-ZTP-email": "a"}}, true, "X-Ztp-*"},
		"identity header, removal": {RuleSpec{Remove: []string{"X-Ztp-Assertion"}}, true, "X-Ztp-*"},
		"underscore spelling":      {RuleSpec{Set: map[string]string{"X_Ztp_User": "a"}}, true, "X-Ztp-*"},
		"framing":                  {RuleSpec{Set: map[string]string{"Transfer-Encoding": "chunked"}}, true, "framing"},
		"host":                     {RuleSpec{Set: map[string]string{"Host": "x"}}, true, "host_rewrite"},
		"forwarded for":            {RuleSpec{Set: map[string]string{"X-Forwarded-For": "1.2.3.4"}}, true, "set by the proxy"},
		"CRLF literal":             {RuleSpec{Set: map[string]string{"X-A": "a\r\nX-Ztp-User: admin"}}, true, "printable ASCII"},
		"non-ASCII literal":        {RuleSpec{Set: map[string]string{"X-A": "zoë"}}, true, "printable ASCII"},
		"bad name":                 {RuleSpec{Set: map[string]string{"X A": "a"}}, true, "not a valid header name"},
		"unknown field":            {RuleSpec{Set: map[string]string{"X-A": "{{.Password}}"}}, true, "template"},
		"bad template":             {RuleSpec{Set: map[string]string{"X-A": "{{.Email"}}, true, "template"},
		"request preset":           {RuleSpec{Preset: PresetSecurity}, true, "only response_headers"},
		"unknown preset":           {RuleSpec{Preset: "strict"}, false, "must be"},
	} {
		_, err := CompileRules(tc.spec, tc.request)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// Issue 18 (headers): rendered values are checked per request.
func TestRulesApplyHostile(t *testing.T) {
	r, err := CompileRules(RuleSpec{Set: map[string]string{"X-Remote-User": "{{.Email}}", "X-Claim": `{{index .Claims "dept"}}`}}, true)
	if err != nil {
		t.Fatal(err)
	}
	rc := &identity.RequestContext{Principal: identity.Principal{Kind: identity.KindUser, ID: "i#a", Email: "a@example.com",
		Claims: map[string]string{"dept": "eng"}}}
	h := http.Header{}
	if err := r.Apply(h, rc, true); err != nil || h.Get("X-Remote-User") != "a@example.com" || h.Get("X-Claim") != "eng" {
		t.Fatalf("plain identity: %v %v", err, h)
	}
	for _, v := range []string{"eng\r\nX-Ztp-User: admin", "e\x7fng", "ingeniería", strings.Repeat("x", MaxTemplateValue+1)} {
		rc.Principal.Claims["dept"] = v
		if err := r.Apply(http.Header{}, rc, true); !errors.Is(err, ErrHostileValue) {
			t.Errorf("claim %q: %v, want ErrHostileValue", v, err)
		}
	}
	delete(rc.Principal.Claims, "dept")
	h = http.Header{}
	if err := r.Apply(h, rc, true); err != nil || h.Get("X-Claim") != "" {
		t.Errorf("missing claim: %v %q, want empty", err, h.Get("X-Claim"))
	}
}

// Issue 18 (headers): the security preset; HSTS only over https, and an
// explicit set entry wins over the preset's.
func TestSecurityPreset(t *testing.T) {
	r, err := CompileRules(RuleSpec{Preset: PresetSecurity, Set: map[string]string{"X-Frame-Options": "DENY"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	rc := &identity.RequestContext{}
	for _, tls := range []bool{true, false} {
		h := http.Header{"X-Frame-Options": {"ALLOWALL"}}
		if err := r.Apply(h, rc, tls); err != nil {
			t.Fatal(err)
		}
		if got := h.Get("Strict-Transport-Security") != ""; got != tls {
			t.Errorf("tls=%v: HSTS sent %v", tls, got)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("tls=%v: %v", tls, h)
		}
	}
}
