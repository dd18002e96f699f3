// Package harness is what every e2e package shares: the -bin-dir and -keep-logs flags, a TestMain
// that runs the package's tests against one local control plane, the real kubectl with the built
// plugin on PATH, Eventually, and the install and preview as objects.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/plugin/preview"
)

var (
	binDir  = flag.String("bin-dir", "", "directory with the built binaries and the control plane (make build tools); default: bin/ of the module")
	keepDir = flag.Bool("keep-logs", false, "keep the cluster's work dir (logs) after the run")
)

// Suite is how one e2e package runs its control plane.
type Suite struct {
	// Cluster are the options of cluster.Start; Main sets BinDir, Keep and Log.
	Cluster cluster.Options
	// Timeout bounds starting the control plane and Setup; 5 minutes if zero.
	Timeout time.Duration
	// Setup, if set, runs once the control plane is up and before the tests.
	Setup func(ctx context.Context, c *cluster.Cluster) error
	// Verify, if set, runs after the tests; an error fails the run although every test passed.
	Verify func(c *cluster.Cluster) error
}

// Main is a TestMain: it parses the flags, starts the control plane, stores it in *env for the
// tests, runs Setup, the tests and Verify, stops the control plane and returns the exit code.
func Main(m *testing.M, env **cluster.Cluster, s Suite) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	bin, err := BinDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.Cluster.BinDir, s.Cluster.Keep, s.Cluster.Log = bin, *keepDir, os.Stderr
	c, err := cluster.Start(ctx, s.Cluster)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the local control plane: %v\n", err)
		return 1
	}
	*env = c
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the local control plane: %v\n", err)
		}
	}()
	if s.Setup != nil {
		if err := s.Setup(ctx, c); err != nil {
			fmt.Fprintf(os.Stderr, "setting up the local control plane: %v\n", err)
			return 1
		}
	}
	code := m.Run()
	if s.Verify != nil {
		if err := s.Verify(c); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			return 1
		}
	}
	return code
}

// BinDir is the absolute -bin-dir: kubectl looks plugins up on PATH, where a relative directory
// is refused. Without the flag it is bin/ of the module, found above the working directory (go
// test runs in the package's directory).
func BinDir() (string, error) {
	if *binDir != "" {
		bin, err := filepath.Abs(*binDir)
		if err != nil {
			return "", fmt.Errorf("resolving -bin-dir: %w", err)
		}
		return bin, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module's bin/: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module's bin/: no go.mod above the working directory; pass -bin-dir")
		}
		dir = parent
	}
}

// KubectlCmd is the real kubectl against c, with the bin dir first on PATH so that
// `kubectl overcommit` finds the built plugin. The kubeconfig goes in KUBECONFIG: kubectl
// refuses flags before a plugin's name, and does not pass them on to plugin completion.
func KubectlCmd(ctx context.Context, c *cluster.Cluster, args ...string) (*exec.Cmd, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+c.Kubeconfig())
	return cmd, nil
}

// Kubectl runs the real kubectl against c (see KubectlCmd) for at most two minutes and logs the
// command line and its output.
func Kubectl(t testing.TB, c *cluster.Cluster, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := KubectlCmd(ctx, c, args...)
	if err != nil {
		return "", "", err
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("kubectl %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// MustKubectl is Kubectl that fails the test on a non-zero exit.
func MustKubectl(t testing.TB, c *cluster.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := Kubectl(t, c, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// Eventually calls check every 250 ms until it returns nil, and fails the test with check's last
// error if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), 250*time.Millisecond, timeout, what, check); err != nil {
		t.Fatal(err)
	}
}

// Preview runs `kubectl overcommit preview args... -o json` against c and decodes it.
func Preview(t testing.TB, c *cluster.Cluster, args ...string) *preview.Preview {
	t.Helper()
	out := MustKubectl(t, c, append(append([]string{"overcommit", "preview"}, args...), "-o", "json")...)
	var p preview.Preview
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("decoding the preview: %v", err)
	}
	return &p
}
