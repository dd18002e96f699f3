//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestNodeGauges follows one node through the webhook's node gauges, read from its /metrics with
// the real apiserver's watch behind them: opted in by a label (not yet written: unrecorded), a
// status write through the webhook (recorded, 4 cores and 4Gi gained), a status write of the raw
// allocatable while the apiserver cannot reach the webhook (stored differs from the record, the
// gain gone), and the next status write with the webhook back (healed). Not parallel: the gauges
// sum every opted-in node of the cluster, so the test compares them with their values before it
// while nothing else runs, and it takes the webhook's Service away for a moment.
func TestNodeGauges(t *testing.T) {
	ctx := context.Background()
	cs := kube(t)
	var base harness.NodeGauges
	harness.Eventually(t, 60*time.Second, "the webhook's node gauges", func() error {
		var err error
		base, err = harness.SettledNodeGauges(ctx, env)
		return err
	})
	// expect waits until the gauges are base plus want (the cache follows the watch).
	expect := func(what string, want harness.NodeGauges) {
		t.Helper()
		want = base.Plus(want)
		harness.Eventually(t, 30*time.Second, what, func() error {
			got, err := harness.ScrapeNodeGauges(ctx, env)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("node gauges (-want +got):\n%s", diff)
			}
			return nil
		})
	}

	// Not kwok's: nothing but this test writes its status.
	const name = "gauges-1"
	node := cluster.KwokNode(name, "4", "8Gi")
	delete(node.Annotations, cluster.KwokNodeAnnotation)
	node.Annotations[names.CPURatioAnnotation] = "2"
	node.Annotations[names.MemoryRatioAnnotation] = "1.5"
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	expect("the node created, not opted in", harness.NodeGauges{})

	// A label on the node itself: the node policy runs on status writes, so no record yet.
	label := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, names.EnabledLabel, names.EnabledValue)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(label), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("opted in, not written", harness.NodeGauges{OptedIn: 1, Unrecorded: 1})

	writeStatus := func(patch string) *corev1.Node {
		t.Helper()
		n, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	gained := harness.NodeGauges{OptedIn: 1, CPUCores: 4, MemoryBytes: 4 << 30}
	if n := writeStatus(`{"status":{}}`); n.Annotations[names.AppliedAnnotation] == "" {
		t.Fatalf("the status write was not mutated: %v", n.Annotations)
	}
	expect("written through the webhook", gained)

	// The apiserver cannot reach the webhook (failurePolicy Ignore) while the raw allocatable
	// is written, as a kubelet reporting during an outage would.
	svcs := cs.CoreV1().Services(cluster.WebhookNamespace)
	if err := svcs.Delete(ctx, cluster.WebhookServiceName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := env.InstallWebhookConfiguration(context.Background()); err != nil {
				t.Errorf("restoring the suite's webhook registration: %v", err)
			}
		}
	}
	t.Cleanup(restore)
	raw := `{"status":{"allocatable":{"cpu":"4","memory":"8Gi"}}}`
	harness.Eventually(t, 30*time.Second, "a status write stored without the webhook", func() error {
		n := writeStatus(raw)
		if got := n.Status.Allocatable[corev1.ResourceCPU]; got.Cmp(resource.MustParse("4")) != 0 {
			return fmt.Errorf("stored cpu %s: the webhook still rewrites", got.String())
		}
		return nil
	})
	expect("stored at raw without the webhook", harness.NodeGauges{OptedIn: 1, Differs: 1})

	restore()
	if n := writeStatus(`{"status":{}}`); n.Status.Allocatable.Cpu().Cmp(resource.MustParse("8")) != 0 {
		t.Fatalf("the status write with the webhook back stored cpu %s, want 8", n.Status.Allocatable.Cpu())
	}
	expect("healed by the next status write", gained)

	if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the node deleted", harness.NodeGauges{})
}
