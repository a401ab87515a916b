package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditLoggerCloseFlushes: audit lines are batched, and the close
// function `serve` defers (it runs after the drain on SIGTERM) writes out
// every buffered line.
func TestAuditLoggerCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	logger, closeFn, err := newAuditLogger(path, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		logger.Info("decision", "request_id", "r1", "decision", "allow")
	}
	closeFn()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines after close, want 1000", len(lines))
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[999]), &rec); err != nil || rec["event"] != "decision" || rec["log"] != "audit" {
		t.Fatalf("last line %q: %v", lines[999], err)
	}
}
