//go:build e2e

package restart

import (
	"context"
	"os"
	"testing"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

var env *cluster.Cluster

// settings are the defaults: the scenarios ask for cpu x2 by annotation, within the default max.
var settings = policy.DefaultSettings()

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &env, harness.Suite{Cluster: cluster.Options{
		Webhook: &cluster.WebhookOptions{
			// No policy flags: the settings come from the ConfigMap, written here once the
			// apiserver is up and before the webhook starts; it connects as an admin.
			Kubeconfig: func(ctx context.Context, c *cluster.Cluster) (string, error) {
				if err := cluster.EnsureSettings(ctx, c.Client(), settings); err != nil {
					return "", err
				}
				return c.Kubeconfig(), nil
			},
		},
	}}))
}
