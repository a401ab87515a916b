package proxy

import (
	"net/netip"
	"net/url"
	"testing"
)

func mustPrefixes(t testing.TB, cidrs ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func pathUnescapeForTest(p string) (string, error) { return url.PathUnescape(p) }
