//go:build e2e

package e2e

import (
	"testing"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/test/e2e/forgedrecords"
)

// TestForgedRecordsRefused (webhook mode): a user who may patch nodes but not nodes/status
// cannot set, change or remove the node records or the usage target, so no record the webhook
// did not write raises allocatable above the maximum ratio times what the kubelet reported;
// everyday node edits and `kubectl overcommit disable`/`enable` still work. Not parallel: the
// ValidatingAdmissionPolicy it installs applies to every node while it runs.
func TestForgedRecordsRefused(t *testing.T) {
	forgedrecords.Run(t, forgedrecords.Env{
		Admin:    env.RESTConfig(),
		Mode:     deploy.ModeWebhook,
		Settings: suiteSettings,
		Kubectl:  kubectl,
	})
}
