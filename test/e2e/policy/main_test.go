//go:build e2e

// Package policy tests policy mode on a real kube-apiserver: the node policy of shared/policy,
// written in CEL as a MutatingAdmissionPolicy, must store exactly what policy.Compute says.
package policy

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
	binDir  = flag.String("bin-dir", "../../../bin", "directory with the control plane binaries (make tools)")
	keepDir = flag.Bool("keep-logs", false, "keep the cluster's work dir (logs) after the run")
	env     *cluster.Cluster
)

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
	env, err = cluster.Start(ctx, cluster.Options{BinDir: bin, Keep: *keepDir, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the local control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the local control plane: %v\n", err)
		}
	}()
	if err := env.InstallNodePolicy(ctx, settings); err != nil {
		fmt.Fprintf(os.Stderr, "installing policy mode: %v\n", err)
		return 1
	}
	return m.Run()
}
