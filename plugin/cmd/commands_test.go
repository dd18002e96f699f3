package cmd

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// TestGolden runs commands against the fixture and compares everything they print.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testcluster.Options
		args []string
		// writes says whether the command may change the cluster.
		writes bool
		// bare runs against opts.Objects alone instead of the fixture.
		bare bool
	}{
		{name: "enable", opts: withSettings(), args: []string{"enable", "node-a", "--cpu-ratio", "2.0"}, writes: true},
		{name: "enable-selector-dry-run-client-yaml", opts: withSettings(), args: []string{"enable", "-l", "pool=batch", "--cpu-ratio", "2", "--dry-run=client", "-o", "yaml"}},
		{name: "enable-dry-run-server-name", opts: withSettings(), args: []string{"enable", "node-a", "node/node-d", "--cpu-ratio", "1.5", "--dry-run=server", "-o", "name"}},
		{name: "enable-memory-warning", opts: withSettings(), args: []string{"enable", "node-a", "--memory-ratio", "1.25"}, writes: true},
		{name: "enable-no-settings", opts: testcluster.Options{Objects: []runtime.Object{testcluster.WebhookConfiguration(true)}}, args: []string{"enable", "node-a"}, writes: true},
		{name: "enable-invalid-settings", opts: invalidSettings(), args: []string{"enable", "node-a"}, writes: true},
		{name: "enable-webhook-down", opts: noNodePolicy(withSettings()), args: []string{"enable", "node-a", "--cpu-ratio", "2"}, writes: true},
		{name: "enable-policy-mode", opts: withPolicyMode(), args: []string{"enable", "node-a", "--cpu-ratio", "2"}, writes: true},
		{name: "enable-policy-not-applied", opts: noNodePolicy(withPolicyMode()), args: []string{"enable", "node-a", "--cpu-ratio", "2"}, writes: true},
		{name: "enable-no-node-policy", opts: noNodePolicy(testcluster.Options{Objects: []runtime.Object{testcluster.SettingsConfigMap(policy.DefaultSettings())}}),
			args: []string{"enable", "node-a"}, writes: true},
		{name: "enable-both-modes", opts: testcluster.Options{Objects: append(withSettings().Objects, testcluster.NodePolicy())},
			args: []string{"enable", "node-a", "--dry-run=server"}},
		{name: "enable-unknown-node", opts: withSettings(), args: []string{"enable", "node-a", "nope", "nada"}},
		{name: "enable-ratio-below-one", opts: withSettings(), args: []string{"enable", "node-a", "--cpu-ratio", "0.5"}},
		{name: "enable-ratio-not-a-number", opts: withSettings(), args: []string{"enable", "node-a", "--cpu-ratio", "x"}},
		{name: "enable-ratio-above-max", opts: withSettings(), args: []string{"enable", "node-a", "--cpu-ratio", "2", "--memory-ratio", "2"}},
		{name: "enable-selector-matches-nothing", opts: withSettings(), args: []string{"enable", "-l", "pool=none"}},
		{name: "enable-bad-selector", opts: withSettings(), args: []string{"enable", "-l", "pool in (x"}},
		{name: "enable-bad-policy", opts: withSettings(), args: []string{"enable", "node-a", "--policy", "dynamic"}},
		{name: "enable-nothing-selected", opts: withSettings(), args: []string{"enable"}},
		{name: "enable-names-and-all", opts: withSettings(), args: []string{"enable", "node-a", "--all"}},
		{name: "enable-bad-output", opts: withSettings(), args: []string{"enable", "node-a", "-o", "wide"}},
		{name: "enable-bad-dry-run", opts: withSettings(), args: []string{"enable", "node-a", "--dry-run=maybe"}},
		{name: "enable-unknown-flag", opts: withSettings(), args: []string{"enable", "node-a", "--ratio", "2"}},

		{name: "disable-refused", opts: withSettings(), args: []string{"disable", "--all"}},
		{name: "disable-force", opts: withSettings(), args: []string{"disable", "node-b", "--force"}, writes: true},
		{name: "disable", opts: withSettings(), args: []string{"disable", "node-c", "node-a"}, writes: true},
		{name: "disable-dry-run-client-yaml", opts: withSettings(), args: []string{"disable", "node-c", "--dry-run=client", "-o", "yaml"}},
		{name: "disable-dry-run-server-json", opts: withSettings(), args: []string{"disable", "node-c", "--dry-run=server", "-o", "json"}},
		{name: "disable-unknown-node", opts: withSettings(), args: []string{"disable", "node-c", "nope"}},

		{name: "preview", opts: withMetrics(withSettings()), args: []string{"preview"}},
		{name: "preview-all-cpu-2", opts: withSettings(), args: []string{"preview", "--all", "--cpu-ratio", "2"}},
		{name: "preview-json", opts: withMetrics(withSettings()), args: []string{"preview", "node-a", "node-c", "--cpu-ratio", "2", "-o", "json"}},
		{name: "preview-yaml", opts: withSettings(), args: []string{"preview", "-l", "pool=batch", "--memory-ratio", "1.5", "-o", "yaml"}},
		{name: "preview-patch", opts: withSettings(), args: []string{"preview", "node-a", "--cpu-ratio", "2", "-o", "patch"}},
		{name: "preview-patch-two-nodes", opts: withSettings(), args: []string{"preview", "node-a", "node-d", "-o", "patch"}},
		{name: "preview-server", opts: withSettings(), args: []string{"preview", "node-a", "--cpu-ratio", "2", "--server", "-o", "json"}},
		{name: "preview-server-webhook-down", opts: noNodePolicy(withSettings()), args: []string{"preview", "node-a", "--server"}},
		{name: "preview-server-policy-mode", opts: withPolicyMode(), args: []string{"preview", "node-a", "--server"}},
		{name: "preview-server-policy-not-applied", opts: noNodePolicy(withPolicyMode()), args: []string{"preview", "node-a", "--server"}},
		{name: "preview-no-settings", opts: testcluster.Options{Objects: []runtime.Object{testcluster.WebhookConfiguration(true)}}, args: []string{"preview", "node-a", "-o", "yaml"}},
		{name: "preview-usage-no-metrics", opts: withSettings(), args: []string{"preview", "node-c"}},
		{name: "preview-ratio-above-max", opts: withSettings(), args: []string{"preview", "-l", "pool=batch", "--cpu-ratio", "9"}},
		{name: "preview-nothing-enabled", bare: true, opts: testcluster.Options{Objects: []runtime.Object{testcluster.Node("node-a").Build()}}, args: []string{"preview"}},
		{name: "preview-usage-window", opts: withWindow(withMetrics(withSettings())), args: []string{"preview", "node-c", "node-e", "node-f", "node-g"}},
		{name: "preview-usage-window-json", opts: withWindow(withMetrics(withSettings())), args: []string{"preview", "node-e", "node-f", "-o", "json"}},
		{name: "preview-policy-mode-statistic", opts: withPublishedTarget(), args: []string{"preview", "node-p", "-o", "yaml"}},
		{name: "preview-policy-mode-statistic-table", opts: withPublishedTarget(), args: []string{"preview", "node-p"}},
		{name: "preview-bad-output", opts: withSettings(), args: []string{"preview", "-o", "wide"}},

		{name: "savings", opts: withMetrics(withSettings()), args: []string{"savings"}},
		{name: "savings-no-metrics", opts: withSettings(), args: []string{"savings", "--sort-by", "cpu-extra"}},
		{name: "savings-json", opts: withMetrics(withSettings()), args: []string{"savings", "-o", "json"}},
		{name: "savings-yaml", opts: withSettings(), args: []string{"savings", "-l", "pool=batch", "-o", "yaml"}},
		{name: "savings-sort-by-memory-usage", opts: withMetrics(withSettings()), args: []string{"savings", "--sort-by", "memory-usage"}},
		{name: "savings-usage-window", opts: withWindow(withMetrics(withSettings())), args: []string{"savings"}},
		{name: "savings-usage-window-json", opts: withWindow(withSettings()), args: []string{"savings", "-l", "pool=window", "-o", "json"}},
		{name: "savings-bad-sort", opts: withSettings(), args: []string{"savings", "--sort-by", "cpu"}},
		{name: "savings-selector-matches-nothing", opts: withSettings(), args: []string{"savings", "-l", "pool=none"}},
		{name: "savings-args", opts: withSettings(), args: []string{"savings", "node-a"}},
		{name: "savings-csv", opts: withMetrics(withSettings()), args: []string{"savings", "-o", "csv", "--sort-by", "cpu-usage"}},
		{name: "savings-csv-no-metrics", opts: withWindow(withSettings()), args: []string{"savings", "-o", "csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *testcluster.Cluster
			if tc.bare {
				c = testcluster.New(tc.opts)
			} else {
				c = fixture(tc.opts)
			}
			stdout, stderr, err := run(t, c, tc.args...)
			compareGolden(t, tc.name, "$ kubectl overcommit "+strings.Join(tc.args, " ")+"\n"+transcript(stdout, stderr, err))
			if writes := testcluster.Writes(c.Kube); !tc.writes && len(writes) > 0 {
				t.Errorf("the command changed the cluster:\n%s", strings.Join(writes, "\n"))
			}
		})
	}
}

func noNodePolicy(o testcluster.Options) testcluster.Options {
	o.NoNodePolicy = true
	return o
}

// invalidSettings is webhook mode with a settings ConfigMap whose max cpu ratio is below its
// default: the node policy uses the defaults.
func invalidSettings() testcluster.Options {
	cm := testcluster.SettingsConfigMap(policy.DefaultSettings())
	cm.Data[policy.KeyMaxCPURatio] = "1.2"
	return testcluster.Options{Objects: []runtime.Object{cm, testcluster.WebhookConfiguration(true)}}
}

// TestEnableStoresWhatPreviewShows is the plugin's promise in one test: the allocatable enable
// leaves stored is what preview printed before.
func TestEnableStoresWhatPreviewShows(t *testing.T) {
	c := fixture(withSettings())
	out, _, err := run(t, c, "preview", "node-a", "node-b", "--cpu-ratio", "2.5", "--memory-ratio", "1.5", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, c, "enable", "node-a", "node-b", "--cpu-ratio", "2.5", "--memory-ratio", "1.5"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node-a", "node-b"} {
		n := getNode(t, c, name)
		for _, want := range []string{
			`"node": "` + name + `"`,
			`"cpu": "` + n.Status.Allocatable.Cpu().String() + `"`,
			`"memory": "` + n.Status.Allocatable.Memory().String() + `"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("preview did not show %s; stored %s\n%s", want, allocatable(n), out)
			}
		}
	}
	if got, want := allocatable(getNode(t, c, "node-a")), "10/12Gi capacity 10/12Gi"; got != want {
		t.Errorf("node-a stored %s, want %s", got, want)
	}
}

func TestDisableRestoresRaw(t *testing.T) {
	c := fixture(withSettings())
	if _, _, err := run(t, c, "disable", "node-b", "--force"); err != nil {
		t.Fatal(err)
	}
	n := getNode(t, c, "node-b")
	if diff := cmp.Diff("4/8Gi capacity 4/8Gi", allocatable(n)); diff != "" {
		t.Error(diff)
	}
	for _, k := range []string{"overcommit.dev/raw", "overcommit.dev/applied", "overcommit.dev/cpu-ratio"} {
		if _, ok := n.Annotations[k]; ok {
			t.Errorf("annotation %s left behind", k)
		}
	}
	if _, ok := n.Labels["overcommit.dev/enabled"]; ok {
		t.Error("label left behind")
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, fixture(testcluster.Options{}), "version")
	if err != nil || !strings.HasPrefix(out, "kubectl-overcommit ") {
		t.Errorf("version printed %q, %v", out, err)
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"enable", "node-"}, []string{"node-a", "node-b", "node-c", "node-d"}},
		{[]string{"enable", "node-a", "node-"}, []string{"node-b", "node-c", "node-d"}},
		{[]string{"disable", ""}, []string{"node-b", "node-c"}},
		{[]string{"preview", "node-c"}, []string{"node-c"}},
		{[]string{"enable", "--policy", ""}, []string{"static", "usage"}},
		{[]string{"savings", "--sort-by", "cpu-"}, []string{"name", "cpu-extra", "memory-extra", "cpu-requests", "memory-requests", "cpu-usage", "memory-usage", "pods"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, _, err := run(t, fixture(testcluster.Options{}), append([]string{"__complete"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			// The last line is cobra's directive (":4" = no file completion).
			if diff := cmp.Diff(tc.want, lines[:len(lines)-1]); diff != "" {
				t.Errorf("completions (-want +got):\n%s\n%s", diff, out)
			}
		})
	}
}
