package audit

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records every write it gets.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) snapshot() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

func TestAuditWriterBatchesAndFlushesSoon(t *testing.T) {
	out := &countingWriter{}
	a := NewWriter(out)
	defer a.Close()
	for i := range 100 {
		fmt.Fprintf(a, "line %d\n", i)
	}
	if _, n := out.snapshot(); n > 2 {
		t.Errorf("%d writes for 100 lines right away, want them batched", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, n := out.snapshot()
		if strings.Count(got, "\n") == 100 {
			if n > 10 {
				t.Errorf("100 lines took %d writes", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines not flushed without Flush: %d of 100", strings.Count(got, "\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAuditWriterFlushesAtBufferSize(t *testing.T) {
	out := &countingWriter{}
	a := NewWriter(out)
	defer a.Close()
	line := strings.Repeat("x", 1023) + "\n"
	for range bufferSize / len(line) {
		a.Write([]byte(line))
	}
	if got, _ := out.snapshot(); len(got) != bufferSize {
		t.Fatalf("%d bytes written once the buffer was full, want %d", len(got), bufferSize)
	}
}

// TestAuditWriterCloseKeepsEveryLine: concurrent writers, then Close (as
// on SIGTERM): every line is there once, whole, and in each writer's order.
func TestAuditWriterCloseKeepsEveryLine(t *testing.T) {
	out := &countingWriter{}
	a := NewWriter(out)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(a, "{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("p", i%200))
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := out.snapshot()
	next := make([]int, 20)
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "{\"g\":%d,\"i\":%d,\"pad\":%q}", &g, &i, &pad); err != nil {
			t.Fatalf("broken line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	for g, n := range next {
		if n != 500 {
			t.Errorf("writer %d: %d of 500 lines", g, n)
		}
	}
	fmt.Fprintf(a, "after close\n")
	if got, _ := out.snapshot(); !strings.HasSuffix(got, "after close\n") {
		t.Error("a write after Close was not written through")
	}
}
