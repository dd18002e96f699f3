// Command kubectl-overcommit is the kubectl plugin of overcommit: `kubectl overcommit ...`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/cmd"
)

// The garbage collector's budget, unless GOGC or GOMEMLIMIT say otherwise. A savings report
// decodes every pod in the cluster, 150,000 at 5,000 nodes: with GOGC=100 the collector took a
// third of the plugin's CPU, on the cores the apiserver needs to send those pods. Collecting at
// five times the live heap, and at the latest near 320 MiB (the report's budget is 400 MiB),
// took the report from 6.2-7.6 s to 4.4-5.2 s.
const (
	gcPercent   = 400
	memoryLimit = 320 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.NewCmdOvercommit(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
