//go:build e2e

package policy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/test/e2e/forgedrecords"
)

// TestForgedRecordsRefused (policy mode): as in webhook mode, no record the
// MutatingAdmissionPolicy did not write, and no usage target the webhook's ServiceAccount did
// not publish, can be written through the node itself; the publisher still can, and
// `kubectl overcommit disable`/`enable` still work. Not parallel, like every test of the suite.
func TestForgedRecordsRefused(t *testing.T) {
	forgedrecords.Run(t, forgedrecords.Env{
		Admin:    env.RESTConfig(),
		Mode:     deploy.ModePolicy,
		Settings: settings,
		Kubectl:  kubectl,
	})
}

// kubectl runs the real kubectl as the admin, with bin/ first on PATH so that `kubectl
// overcommit` finds the plugin.
func kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Absolute: kubectl looks the plugin up on PATH, where a relative directory is refused.
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("kubectl %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}
