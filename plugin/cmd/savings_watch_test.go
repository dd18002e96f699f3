package cmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
)

// TestGoldenSavingsWatch runs savings --watch against the fake cluster with a fake clock whose
// every wait changes the cluster (or not) before the next read: a new pod makes a new frame, a
// read that finds what the last found makes none, and a failed read is said once and does not
// end the watch. The last wait cancels the context, as Ctrl-C does.
func TestGoldenSavingsWatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testcluster.Options
		args []string
	}{
		{name: "savings-watch", opts: withSettings(), args: []string{"--watch", "--interval", "2s", "--sort-by", "pods"}},
		{name: "savings-watch-json", opts: withMetrics(withSettings()), args: []string{"-w", "-o", "json", "-l", "pool=batch"}},
		{name: "savings-watch-yaml", opts: withMetrics(withSettings()), args: []string{"-w", "-o", "yaml", "-l", "pool=batch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(tc.opts)
			failNext := false
			c.Kube.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				if failNext {
					failNext = false
					return true, nil, errors.New(`Get "https://10.0.0.1:6443/api/v1/nodes": connection refused`)
				}
				return false, nil, nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			now := time.Date(2026, 12, 2, 14, 30, 0, 0, time.UTC)
			waits := []func(){
				func() { // a pod on node-a: a new frame
					if _, err := c.Kube.CoreV1().Pods("default").Create(ctx, testcluster.Pod("a2", "node-a", "250m", "256Mi"), metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				func() {},                  // the same read: no frame
				func() { failNext = true }, // an apiserver blip: said once on stderr
				func() {},                  // read again: said so, no frame, as nothing changed
				cancel,                     // Ctrl-C
			}
			var out, errOut bytes.Buffer
			o := &SavingsOptions{base: base{IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
				factory: fakeFactory{&Clients{Kube: c.Kube, Metrics: c.Metrics}}}}
			o.now = func() time.Time { return now }
			o.wait = func(_ context.Context, d time.Duration) {
				now = now.Add(d)
				waits[0]()
				waits = waits[1:]
			}
			cmd := newCmdSavings(o)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(ctx)
			if len(waits) != 0 {
				t.Errorf("the watch ended after %d fewer waits than the test has", len(waits))
			}
			compareGolden(t, tc.name, "$ kubectl overcommit savings "+strings.Join(tc.args, " ")+"\n"+transcript(out.String(), errOut.String(), err))
		})
	}
}

// TestGoldenSavingsWatchRefused: a bad --interval, --interval without --watch, -o csv and an
// error of the first read end the command before any frame, as without --watch.
func TestGoldenSavingsWatchRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "savings-watch-interval-zero", args: []string{"savings", "-w", "--interval", "0s"}},
		{name: "savings-watch-interval-negative", args: []string{"savings", "-w", "--interval=-5s"}},
		{name: "savings-watch-interval-no-watch", args: []string{"savings", "--interval", "2s"}},
		{name: "savings-watch-csv", args: []string{"savings", "-w", "-o", "csv"}},
		{name: "savings-watch-first-read-fails", args: []string{"savings", "-w", "--max-cpu-use-percent", "30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := run(t, fixture(withSettings()), tc.args...)
			if err == nil {
				t.Fatalf("kubectl overcommit %s succeeded", strings.Join(tc.args, " "))
			}
			compareGolden(t, tc.name, "$ kubectl overcommit "+strings.Join(tc.args, " ")+"\n"+transcript(stdout, stderr, err))
		})
	}
}
