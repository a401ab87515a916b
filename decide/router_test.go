package decide

import (
	"fmt"
	"testing"
)

func testRoutes(specs ...[3]string) []*Route {
	var rs []*Route
	for _, s := range specs {
		rs = append(rs, &Route{RouteConfig: RouteConfig{Name: s[0], Host: s[1], PathPrefix: s[2]}})
	}
	return rs
}

func TestRouterMatch(t *testing.T) {
	rt := newRouter(testRoutes(
		[3]string{"app", "app.example.com", "/"},
		[3]string{"api", "app.example.com", "/api"},
		[3]string{"admin", "app.example.com", "/admin/"},
		[3]string{"v2", "app.example.com", "/api/v2"},
		[3]string{"wild", "*.corp.example.com", "/"},
		[3]string{"port", "app.example.com:8443", "/special"},
	))
	tests := []struct{ host, path, want string }{
		{"app.example.com", "/", "app"},
		{"app.example.com", "/api", "api"},
		{"app.example.com", "/api/x", "api"},
		{"app.example.com", "/apix", "app"},
		{"app.example.com", "/api/v2/users", "v2"},
		{"app.example.com", "/api/v20", "api"},
		{"app.example.com", "/admin", "admin"},
		{"app.example.com", "/admin/users", "admin"},
		{"app.example.com:8443", "/special/x", "port"},
		{"app.example.com:8443", "/api", "api"},
		{"app.example.com", "/special", "app"},
		{"x.corp.example.com", "/y", "wild"},
		{"a.b.corp.example.com", "/y", "wild"},
		{"corp.example.com", "/y", ""},
		{"other.example.com", "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			r := rt.match(tt.host, tt.path)
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tt.want {
				t.Errorf("match(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
			}
		})
	}
}

func benchmarkRouter(b *testing.B, n int) {
	var specs [][3]string
	for i := 0; i < n; i++ {
		specs = append(specs, [3]string{fmt.Sprintf("r%d", i), fmt.Sprintf("app%d.example.com", i%(n/2+1)), fmt.Sprintf("/svc%d", i)})
	}
	rt := newRouter(testRoutes(specs...))
	host := fmt.Sprintf("app%d.example.com", (n-1)%(n/2+1))
	path := fmt.Sprintf("/svc%d/items/42", n-1)
	if rt.match(host, path) == nil {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		rt.match(host, path)
	}
}

func BenchmarkRouteMatch10(b *testing.B)    { benchmarkRouter(b, 10) }
func BenchmarkRouteMatch10000(b *testing.B) { benchmarkRouter(b, 10000) }
