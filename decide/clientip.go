package decide

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddress finds the real client address. The TCP peer is the client
// unless it is a trusted proxy; then X-Forwarded-For is walked from the
// right, skipping trusted hops, and the first untrusted address is the
// client. hops counts the trusted proxies passed.
func ClientAddress(r *http.Request, trusted []netip.Prefix) (addr netip.Addr, hops int) {
	peer := ParseAddr(r.RemoteAddr)
	if !IsTrusted(peer, trusted) {
		return peer, 0
	}
	hops = 1
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var item string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				item, list = list[j+1:], list[:j]
			} else {
				item, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(item))
			if err != nil {
				// An unparseable hop ends what we can believe; the last
				// trusted proxy's peer is the best we know.
				return peer, hops
			}
			a = a.Unmap()
			if !IsTrusted(a, trusted) {
				return a, hops
			}
			peer = a
			hops++
		}
	}
	return peer, hops
}

func ParseAddr(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func IsTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
