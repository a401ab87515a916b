package decide

import (
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
		{"[::1]1234", true, ""},
		{"[fe80::1%25eth0]", true, ""},
		{"[evil.com]", true, ""},
		{"app.example.com:0443", true, ""},
		{"app.example.com:65536", true, ""},
		{"app.example.com:+443", true, ""},
		{"app.example.com:", true, "app.example.com"},
		{"app..example.com", true, ""},
		{".example.com", true, ""},
		{"app.example.com\x00", true, ""},
		{"app.exämple.com", true, ""},
		{"app_1.internal", true, "app_1.internal"},
		{"a\rb", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := CanonicalHost(tt.in, tt.tls); got != tt.want {
				t.Errorf("canonicalHost(%q, %v) = %q, want %q", tt.in, tt.tls, got, tt.want)
			}
		})
	}
}

func TestParseRequestPath(t *testing.T) {
	tests := []struct {
		in      string
		match   string
		forward string // "" means the same as match
		params  bool
		wantErr bool
	}{
		{in: "", match: "/"},
		{in: "/", match: "/"},
		{in: "/admin", match: "/admin"},
		{in: "/%61dmin", match: "/admin"},
		{in: "/a%20b", match: "/a b"},
		{in: "//admin", match: "/admin"},
		{in: "/pub//admin/", match: "/pub/admin/"},
		{in: "/./admin", match: "/admin"},
		{in: "/admin/.", match: "/admin/"}, // RFC 3986 5.2.4: a trailing "." leaves a directory
		{in: "/pub/../admin", wantErr: true},
		{in: "/pub/%2e%2e/admin", wantErr: true},
		{in: "/pub/%2E%2E/admin", wantErr: true},
		{in: "/pub/.%2e/admin", wantErr: true},
		{in: "/pub%2Fadmin", wantErr: true},
		{in: "/pub%2fadmin", wantErr: true},
		{in: "/pub%5Cadmin", wantErr: true},
		{in: "/pub\\admin", wantErr: true},
		{in: "/pub%00admin", wantErr: true},
		{in: "/pub%0aadmin", wantErr: true},
		{in: "/pub%", wantErr: true},
		{in: "/pub%zz", wantErr: true},
		{in: "/pub%252e%252e", wantErr: true},
		{in: "admin", wantErr: true},
		{in: "/..", wantErr: true},
		{in: "/a/b/..", wantErr: true},
		{in: "/a/..b", match: "/a/..b"},
		{in: "/a/.b", match: "/a/.b"},
		// Issue 12.2: servlet containers strip ";parameters" per segment
		// and read "..;" as "..".
		{in: "/pub/..;/admin/x", wantErr: true},
		{in: "/pub/%2e%2e;/admin/x", wantErr: true},
		{in: "/pub/..%3B/admin/x", wantErr: true},
		{in: "/pub/..%3b/admin/x", wantErr: true},
		{in: "/pub/..;x=1/admin", wantErr: true},
		{in: "/pub/.;/admin", wantErr: true},
		{in: "/pub/.%3b/admin", wantErr: true},
		{in: "/pub/%2e;x/admin", wantErr: true},
		{in: "/admin%3Bx", wantErr: true}, // encoded ";": literal to Tomcat, a delimiter to others
		{in: "/admin;x", match: "/admin", forward: "/admin;x", params: true},
		{in: "/admin;x/y", match: "/admin/y", forward: "/admin;x/y", params: true},
		{in: "/cars;color=red;year=2020/x", match: "/cars/x", forward: "/cars;color=red;year=2020/x", params: true},
		{in: "/app/;jsessionid=AB12", match: "/app/", forward: "/app/;jsessionid=AB12", params: true},
		{in: "/;x/admin", match: "/admin", forward: "/;x/admin", params: true},
		{in: "/;x", match: "/", forward: "/;x", params: true},
		{in: "/a;", match: "/a", forward: "/a;", params: true},
		{in: "/a;x=%2e%2e/b", match: "/a/b", forward: "/a;x=../b", params: true},
		{in: "/a;x//b/./", match: "/a/b/", forward: "/a;x/b/", params: true},
		{in: "/a;x=%2f", wantErr: true},
		{in: "/admin#x", wantErr: true}, // a fragment to Node's URL parser: /admin
		{in: "/a%23b", match: "/a#b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRequestPath(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseRequestPath(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			want := RequestPath{Match: tt.match, Forward: tt.forward, Params: tt.params}
			if want.Forward == "" {
				want.Forward = want.Match
			}
			if tt.wantErr {
				want = RequestPath{}
			}
			if got != want {
				t.Errorf("parseRequestPath(%q) = %+v, want %+v", tt.in, got, want)
			}
		})
	}
}

func TestStripPathSegments(t *testing.T) {
	tests := []struct {
		path string
		n    int
		want string
	}{
		{"/api", 1, "/"},
		{"/api/", 1, "/"},
		{"/api/x", 1, "/x"},
		{"/api/x/", 1, "/x/"},
		{"/api/v1/x", 2, "/x"},
		{"/api;v=1/x", 1, "/x"},
		{"/;s=1/api/x", 1, "/x"},
		{"/api/;jsessionid=1", 1, "/;jsessionid=1"},
		{"/api;a/v1;b/x;c", 2, "/x;c"},
	}
	for _, tt := range tests {
		if got := StripPathSegments(tt.path, tt.n); got != tt.want {
			t.Errorf("stripPathSegments(%q, %d) = %q, want %q", tt.path, tt.n, got, tt.want)
		}
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
