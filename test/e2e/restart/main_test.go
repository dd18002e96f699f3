//go:build e2e

package restart

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var (
	binDir  = flag.String("bin-dir", "../../../bin", "directory with the built binaries and the control plane (make build tools)")
	keepDir = flag.Bool("keep-logs", false, "keep the cluster's work dir (logs) after the run")
	env     *cluster.Cluster
)

// settings are the defaults: the scenarios ask for cpu x2 by annotation, within the default max.
var settings = policy.DefaultSettings()

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env, err = cluster.Start(ctx, cluster.Options{
		BinDir: bin,
		Keep:   *keepDir,
		Log:    os.Stderr,
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
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the local control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the local control plane: %v\n", err)
		}
	}()
	return m.Run()
}
