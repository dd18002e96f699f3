//go:build e2e

// Package policy tests policy mode on a real kube-apiserver: the node policy of shared/policy,
// written in CEL as a MutatingAdmissionPolicy, must store exactly what policy.Compute says.
package policy

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

var env *cluster.Cluster

// confirmedAt is the usage targets' confirmation the suite installs; the differential test's
// heartbeats fall on both sides of it.
var confirmedAt = time.Unix(1_790_000_000, 0)

// settings are what the suite installs; not the defaults, so that reading the params is tested.
var settings = func() policy.Settings {
	s := policy.DefaultSettings()
	s.CPU.Default = policy.MustParseRatio("1.25")
	s.CPU.Max = policy.MustParseRatio("3.5")
	s.Memory.Max = policy.MustParseRatio("2")
	s.TargetsConfirmedAt = confirmedAt
	return s
}()

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &env, harness.Suite{
		Setup: func(ctx context.Context, c *cluster.Cluster) error { return c.InstallNodePolicy(ctx, settings) },
	}))
}
