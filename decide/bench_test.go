package decide

import (
	"strings"
	"testing"
)

// BenchmarkCanonicalPath measures the path canonicaliser on a path that
// needs decoding.
func BenchmarkCanonicalPath(b *testing.B) {
	p := "/api/v1/" + strings.Repeat("seg%20ment/", 4) + "items"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequestPath(p); err != nil {
			b.Fatal(err)
		}
	}
}
