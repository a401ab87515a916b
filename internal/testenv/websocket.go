package testenv

import "net/http"

// WebSocketHeaders are the headers a browser sends to open a WebSocket
// from a page of origin ("" for none) with cookies.
func WebSocketHeaders(origin string, cookies []*http.Cookie) http.Header {
	h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	if origin != "" {
		h["Origin"] = []string{origin}
	}
	for _, c := range cookies {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	return h
}
