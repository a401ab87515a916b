package testenv

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHostileUpstream plays a script per connection: answer, then an
// unsolicited second response, a mark, and a keep-alive tail on the next
// connection.
func TestHostileUpstream(t *testing.T) {
	u := StartHostileUpstream(t,
		[]Step{ReadRequest(), Respond("for {{path}}"), Sleep(10 * time.Millisecond), Write(HostileResponse(200, "stray")), Mark("stray")},
		[]Step{KeepAlive("kept {{path}}")},
	)
	c1, err := net.Dial("tcp", u.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	io.WriteString(c1, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
	u.WaitMark(t, "stray", 5*time.Second)
	got, _ := io.ReadAll(c1) // the script ended: the server closed
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nfor /one" + HostileResponse(200, "stray")
	if string(got) != want {
		t.Fatalf("connection 1 got %q, want %q", got, want)
	}

	c2, err := net.Dial("tcp", u.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	br := bufio.NewReader(c2)
	for _, p := range []string{"/a", "/b"} {
		io.WriteString(c2, "GET "+p+" HTTP/1.1\nHost: x\n\n") // bare LF is read too
		head := ""
		for !strings.HasSuffix(head, "\r\n\r\n") {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			head += l
		}
		body := make([]byte, len("kept "+p))
		if _, err := io.ReadFull(br, body); err != nil || string(body) != "kept "+p {
			t.Fatalf("keep-alive answer %q %v", body, err)
		}
	}
	if n := u.Conns(); n != 2 {
		t.Errorf("connections %d, want 2", n)
	}
	if got := strings.Join(u.Targets(), ","); got != "/one,/a,/b" {
		t.Errorf("targets %s", got)
	}
}
