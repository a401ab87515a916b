package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// readmeSection returns the command lines of the README's "Try it with
// your own config" code block, without their trailing comments.
func readmeSection(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Try it with your own config")
	if !ok {
		t.Fatal("README.md has no section \"Try it with your own config\"")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no sh code block")
	}
	comment := regexp.MustCompile(`\s{2,}#.*$`)
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(comment.ReplaceAllString(l, ""))
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestREADMEWalkthrough: issue 15.5, the README's second section could not
// be completed as written ($TOKEN never defined, no upstream, no request
// file, risk flag refused while serve ran). examples/readme-walkthrough.sh
// runs every command of the section, word for word (checked here), against
// the real binary, curl and the demo's IdP and app, and checks what each
// shows. The section's ports are fixed (8080, 8443, 8444, 9090), so the
// script runs in a network namespace of its own when the machine allows
// one, and otherwise only when those ports are free.
func TestREADMEWalkthrough(t *testing.T) {
	script := filepath.Join(testenv.RepoRoot(t), "examples", "readme-walkthrough.sh")
	body, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	lines := readmeSection(t)
	if len(lines) < 10 {
		t.Fatalf("README section has %d commands", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(string(body), l) {
			t.Errorf("README command not in %s: %s", filepath.Base(script), l)
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.RequireComponent(t, "curl", err)
	}
	bin := ztproxyBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if isolatedNetworkWorks() {
		cmd = exec.CommandContext(ctx, "unshare", "-rn", "bash", "-c", `ip link set lo up && exec bash "$0"`, script)
	} else {
		for _, port := range []string{"8080", "8443", "8444", "9090"} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+port)
			if err != nil {
				testenv.RequireComponent(t, "free ports 8080, 8443, 8444, 9090 (or unshare -rn and ip)", err)
			}
			ln.Close()
		}
		cmd = exec.CommandContext(ctx, "bash", script)
	}
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "ZTPROXY_BIN="+bin, "ZTP_ISSUER=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "readme-walkthrough: OK") {
		t.Fatalf("walkthrough: %v\n%s", err, out)
	}
}

// isolatedNetworkWorks reports whether this machine lets the test run a
// command in a network namespace of its own with loopback up.
func isolatedNetworkWorks() bool {
	if _, err := exec.LookPath("unshare"); err != nil {
		return false
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	return exec.Command("unshare", "-rn", "ip", "link", "set", "lo", "up").Run() == nil
}
