package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// HelmVersion is the helm module version the chart tests run, built with
// `go install helm.sh/helm/v4/cmd/helm@<HelmVersion>` into HelmBinary's
// directory (.ci/run does it when the binary is missing).
const HelmVersion = "v4.3.2"

// HelmBinary is where the cached helm binary lives: $ZTPROXY_HELM_BIN when
// set, else ~/.cache/ztproxy-helm/<version>/helm.
func HelmBinary() string {
	return cachedProgram("ZTPROXY_HELM_BIN", "ztproxy-helm", HelmVersion, "helm")
}

// cacheDir is the user's home .cache, where .ci/run builds Go module
// programs the tests run.
// cachedProgram is $env when set, else the file .ci/run builds into
// ~/.cache/<dir>/<version>/.
func cachedProgram(env, dir, version, file string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	return filepath.Join(cacheDir(), dir, version, file)
}

func cacheDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache")
}

// HelmRunner runs helm with args and returns its standard output, or an
// error carrying its exit status and standard error.
type HelmRunner func(args ...string) (string, error)

// Helm returns a runner of the cached helm binary. A missing binary skips
// the test, or fails it under CI. Helm's own state (repositories, cache,
// config) goes to a temporary directory, so the tests never read or write
// the user's.
func Helm(t testing.TB) HelmRunner {
	t.Helper()
	bin := HelmBinary()
	if _, err := os.Stat(bin); err != nil {
		RequireComponent(t, "helm "+HelmVersion, fmt.Errorf("%w (build it with: GOBIN=%s go install helm.sh/helm/v4/cmd/helm@%s)", err, filepath.Dir(bin), HelmVersion))
	}
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "kubeconfig"))
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return stdout.String(), fmt.Errorf("helm %v: %w\n%s", args, err, stderr.String())
		}
		return stdout.String(), nil
	}
}
