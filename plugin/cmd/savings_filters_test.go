package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
)

// flagsFactory is the fake clients with kubectl's real connection flags, so that -n/--namespace
// parses and reaches the command as it does in NewCmdOvercommit.
type flagsFactory struct {
	fakeFactory
	flags *genericclioptions.ConfigFlags
}

func (f flagsFactory) Namespace() (string, bool) { return explicitNamespace(f.flags) }

// runWithConfigFlags is run with kubectl's connection flags on the root command.
func runWithConfigFlags(t *testing.T, c *testcluster.Cluster, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	flags := genericclioptions.NewConfigFlags(true)
	root := NewCmdOvercommitWith(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		flagsFactory{fakeFactory{&Clients{Kube: c.Kube, Metrics: c.Metrics}}, flags})
	flags.AddFlags(root.PersistentFlags())
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// withShop adds the pods of namespace shop: two on node-b (1 cpu 1Gi, 500m 512Mi) and one on
// node-d, plus a finished one on node-b that must not count.
func withShop(o testcluster.Options) testcluster.Options {
	inShop := func(name, node, cpu, memory string) *corev1.Pod {
		p := testcluster.Pod(name, node, cpu, memory)
		p.Namespace = "shop"
		return p
	}
	done := inShop("shop-done", "node-b", "2", "2Gi")
	done.Status.Phase = corev1.PodSucceeded
	o.Objects = append(o.Objects, done, inShop("shop-1", "node-b", "1", "1Gi"), inShop("shop-2", "node-b", "500m", "512Mi"), inShop("shop-3", "node-d", "250m", "256Mi"))
	return o
}

func TestGoldenSavingsFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testcluster.Options
		args []string
	}{
		{name: "savings-namespace", opts: withShop(withMetrics(withSettings())), args: []string{"savings", "-n", "shop"}},
		{name: "savings-namespace-json", opts: withShop(withMetrics(withSettings())), args: []string{"savings", "--namespace", "shop", "-o", "json"}},
		{name: "savings-all-namespaces-over-namespace", opts: withShop(withMetrics(withSettings())), args: []string{"savings", "-n", "shop", "-A"}},
		{name: "savings-min-cpu-extra", opts: withWindow(withMetrics(withSettings())), args: []string{"savings", "--min-cpu-extra", "1"}},
		{name: "savings-max-use-percent", opts: withMetrics(withSettings()), args: []string{"savings", "--max-cpu-use-percent", "30", "--max-memory-use-percent", "100"}},
		{name: "savings-filters-json", opts: withShop(withMetrics(withSettings())), args: []string{"savings", "-n", "shop", "--min-cpu-extra", "500m", "-o", "json"}},
		{name: "savings-bad-thresholds", opts: withSettings(), args: []string{"savings", "--min-cpu-extra", "lots", "--min-memory-extra", "-1Gi", "--max-memory-use-percent", "half"}},
		{name: "savings-use-percent-no-metrics", opts: withSettings(), args: []string{"savings", "--max-cpu-use-percent", "30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(tc.opts)
			stdout, stderr, err := runWithConfigFlags(t, c, tc.args...)
			compareGolden(t, tc.name, "$ kubectl overcommit "+strings.Join(tc.args, " ")+"\n"+transcript(stdout, stderr, err))
			if writes := testcluster.Writes(c.Kube); len(writes) > 0 {
				t.Errorf("the command changed the cluster:\n%s", strings.Join(writes, "\n"))
			}
		})
	}
}

// The kubeconfig context's namespace must not narrow the node report: only -n on the command
// line does.
func TestExplicitNamespace(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: from-context}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Namespace string
		Explicit  bool
	}
	for _, tc := range []struct {
		name string
		args []string
		want result
	}{
		{"context namespace only", nil, result{}},
		{"-n", []string{"-n", "shop"}, result{"shop", true}},
		{"--namespace=", []string{"--namespace=shop"}, result{"shop", true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := genericclioptions.NewConfigFlags(true)
			fs := pflag.NewFlagSet("kubectl-overcommit", pflag.ContinueOnError)
			flags.AddFlags(fs)
			if err := fs.Parse(append([]string{"--kubeconfig", kubeconfig}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			f := &flagFactory{flags: flags}
			var got result
			got.Namespace, got.Explicit = f.Namespace()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Namespace() (-want +got):\n%s", diff)
			}
		})
	}
}
