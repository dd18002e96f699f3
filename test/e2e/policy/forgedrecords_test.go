//go:build e2e

package policy

import (
	"testing"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/test/e2e/forgedrecords"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
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
	return harness.Kubectl(t, env, args...)
}
