//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestPluginSavingsNamespaceAndFilters: through the real kubectl, -n counts only that namespace's
// pods (and drops the lost-node line), -A overrides -n, and a threshold keeps only the rows that
// meet it, with TOTAL over those rows.
func TestPluginSavingsNamespaceAndFilters(t *testing.T) {
	t.Parallel()
	const group = "savings-filters"
	const ns = "e2e-savings-shop"
	pluginNode(t, "plugin-savfilt-a", "4", "8Gi", group)
	pluginNode(t, "plugin-savfilt-b", "4", "8Gi", group)
	mustOvercommit(t, "enable", "plugin-savfilt-b", "--cpu-ratio", "2")

	ctx := context.Background()
	if _, err := kube(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube(t).CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	bound := func(node, name, cpu string) *corev1.Pod {
		p := podOn(node, name, cpu, "100m")
		p.Spec.NodeName = node
		return p
	}
	createPods(t, bound("plugin-savfilt-a", "plugin-savfilt-default", "1"))
	for _, p := range []*corev1.Pod{bound("plugin-savfilt-a", "plugin-savfilt-shop-a", "500m"), bound("plugin-savfilt-b", "plugin-savfilt-shop-b", "250m")} {
		p.Namespace = ns
		// The namespace's default service account, which admission looks up, appears shortly
		// after the namespace.
		harness.Eventually(t, 30*time.Second, "pod "+p.Name, func() error {
			_, err := kube(t).CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	}

	type row struct {
		Pods        int
		CPURequests string
	}
	type report struct {
		Namespace   string
		Rows        map[string]row
		TotalNodes  int
		TotalCPU    string
		LostNodeSet bool
	}
	savingsOf := func(args ...string) report {
		t.Helper()
		var r savings.SavingsReport
		out := mustOvercommit(t, append([]string{"savings", "-l", pluginLabel + "=" + group, "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		got := report{Namespace: r.Namespace, Rows: map[string]row{}, TotalNodes: r.Total.Nodes,
			TotalCPU: r.Total.CPU.Requests.String(), LostNodeSet: r.Total.WithoutLargestEnabled != nil}
		for _, n := range r.Nodes {
			got.Rows[n.Name] = row{n.Pods, n.CPU.Requests.String()}
		}
		return got
	}
	for _, tc := range []struct {
		name string
		args []string
		want report
	}{
		{"every namespace by default", nil, report{Rows: map[string]row{"plugin-savfilt-a": {2, "1500m"}, "plugin-savfilt-b": {1, "250m"}},
			TotalNodes: 2, TotalCPU: "1750m", LostNodeSet: true}},
		{"-n", []string{"-n", ns}, report{Namespace: ns, Rows: map[string]row{"plugin-savfilt-a": {1, "500m"}, "plugin-savfilt-b": {1, "250m"}},
			TotalNodes: 2, TotalCPU: "750m"}},
		{"-A over -n", []string{"-n", ns, "-A"}, report{Rows: map[string]row{"plugin-savfilt-a": {2, "1500m"}, "plugin-savfilt-b": {1, "250m"}},
			TotalNodes: 2, TotalCPU: "1750m", LostNodeSet: true}},
		{"--min-cpu-extra", []string{"--min-cpu-extra", "1"}, report{Rows: map[string]row{"plugin-savfilt-b": {1, "250m"}},
			TotalNodes: 1, TotalCPU: "250m", LostNodeSet: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, savingsOf(tc.args...)); diff != "" {
				t.Errorf("savings %s (-want +got):\n%s", strings.Join(tc.args, " "), diff)
			}
		})
	}

	_, errOut, err := overcommit(t, "savings", "--min-cpu-extra", "lots")
	if want := `invalid --min-cpu-extra "lots": must be a quantity`; err == nil || !strings.Contains(errOut, want) {
		t.Errorf("savings --min-cpu-extra lots: err %v, stderr %q, want it to contain %q", err, errOut, want)
	}
}
