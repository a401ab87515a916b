package proxy

import (
	"strings"
	"testing"
)

func TestCanonicalHost(t *testing.T) {
	tests := []struct {
		in   string
		tls  bool
		want string
	}{
		{"APP.Example.com.", true, "app.example.com"},
		{"app.example.com:443", true, "app.example.com"},
		{"app.example.com:80", false, "app.example.com"},
		{"app.example.com:8443", true, "app.example.com:8443"},
		{"app.example.com:80", true, "app.example.com:80"},
		{"APP.EXAMPLE.COM.:443", true, "app.example.com"},
		{"[::1]:443", true, "[::1]"},
		{"[::1]:9000", true, "[::1]:9000"},
		{"127.0.0.1:8443", true, "127.0.0.1:8443"},
		{"", true, ""},
		{"evil.com/x", true, ""},
		{"a@b.com", true, ""},
		{"app.example.com:44x", true, ""},
		{"[::1", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := canonicalHost(tt.in, tt.tls); got != tt.want {
				t.Errorf("canonicalHost(%q, %v) = %q, want %q", tt.in, tt.tls, got, tt.want)
			}
		})
	}
}

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "/", false},
		{"/", "/", false},
		{"/admin", "/admin", false},
		{"/%61dmin", "/admin", false},
		{"/a%20b", "/a b", false},
		{"//admin", "/admin", false},
		{"/pub//admin/", "/pub/admin/", false},
		{"/./admin", "/admin", false},
		{"/admin/.", "/admin", false},
		{"/pub/../admin", "", true},
		{"/pub/%2e%2e/admin", "", true},
		{"/pub/%2E%2E/admin", "", true},
		{"/pub/.%2e/admin", "", true},
		{"/pub%2Fadmin", "", true},
		{"/pub%2fadmin", "", true},
		{"/pub%5Cadmin", "", true},
		{"/pub\\admin", "", true},
		{"/pub%00admin", "", true},
		{"/pub%0aadmin", "", true},
		{"/pub%", "", true},
		{"/pub%zz", "", true},
		{"/pub%252e%252e", "", true},
		{"admin", "", true},
		{"/..", "", true},
		{"/a/b/..", "", true},
		{"/a/..b", "/a/..b", false},
		{"/a/.b", "/a/.b", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := canonicalPath(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("canonicalPath(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("canonicalPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPathHasPrefix(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"/api", "/api", true},
		{"/api/x", "/api", true},
		{"/apix", "/api", false},
		{"/api/x", "/api/", true},
		{"/anything", "/", true},
	}
	for _, tt := range tests {
		if got := pathHasPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("pathHasPrefix(%q, %q) = %v", tt.path, tt.prefix, got)
		}
	}
}

// FuzzCanonicalPath checks the invariants the router and policy rely on:
// a canonical path is absolute, has no dot-dot segment, no backslash, no
// control byte, no empty segment, and is a fixed point.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/admin", "/pub/../admin", "/%2e%2e/x", "//a//b", "/%61dmin", "/a%2Fb", "/./x/.", "/%c0%ae%c0%ae/", "/a;b/../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := canonicalPath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("%q → %q: not absolute", in, got)
		}
		if strings.Contains(got, "\\") || strings.Contains(got, "//") {
			t.Fatalf("%q → %q: backslash or empty segment", in, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("%q → %q: dot segment survived", in, got)
			}
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] == 0x7f {
				t.Fatalf("%q → %q: control byte", in, got)
			}
		}
		if !strings.Contains(got, "%") {
			again, err := canonicalPath(got)
			if err != nil || again != got {
				t.Fatalf("not a fixed point: %q → %q → %q (%v)", in, got, again, err)
			}
		}
	})
}
