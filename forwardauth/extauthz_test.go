package forwardauth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/peer"
)

func TestExtAuthzPeerAllowed(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 1}, true},
		{&net.UnixAddr{Name: "/run/ztproxy/ext_authz.sock", Net: "unix"}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.11"), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 1}, false},
	} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: tc.addr})
		if got := extAuthzPeerAllowed(ctx, trusted); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.addr, got, tc.want)
		}
	}
	if extAuthzPeerAllowed(context.Background(), trusted) {
		t.Error("a context without a peer is allowed")
	}
}

// envoyCheck is a CheckRequest as Envoy builds it: lower-case header keys,
// pseudo-headers included, the downstream peer as the source.
func envoyCheck(method, host, path string, hdr http.Header, principal string) *authv3.CheckRequest {
	headers := map[string]string{":authority": host, ":path": path, ":method": method, ":scheme": "https"}
	for k, v := range hdr {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 5555}}}},
			Principal: principal,
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-req-1", Method: method, Host: host, Path: path, Scheme: "https", Protocol: "HTTP/2", Headers: headers,
		}},
	}}
}
