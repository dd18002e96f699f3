//go:build e2e

package policyusage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestNodeGaugesInPolicyMode: in policy mode, where the apiserver's MutatingAdmissionPolicy and
// not the webhook writes the nodes, the webhook's node gauges count an opted-in kwok node (static
// policy, cpu x2 on 4 CPUs: 4 cores gained, recorded, as stored) and let it go when it is
// deleted. They sum every opted-in node, so the test compares them with their values before it;
// no other test of the package runs in parallel.
func TestNodeGaugesInPolicyMode(t *testing.T) {
	ctx := context.Background()
	cs := env.Client()
	var base harness.NodeGauges
	harness.Eventually(t, 60*time.Second, "the webhook's node gauges", func() error {
		var err error
		base, err = harness.SettledNodeGauges(ctx, env)
		return err
	})
	expect := func(what string, delta harness.NodeGauges) {
		t.Helper()
		want := base.Plus(delta)
		harness.Eventually(t, 60*time.Second, what, func() error {
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

	node := cluster.KwokNode("gauges-policy-1", "4", "8Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Annotations[names.CPURatioAnnotation] = "2"
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	expect("the node written by the policy in the apiserver", harness.NodeGauges{OptedIn: 1, CPUCores: 4})

	if err := cs.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the node deleted", harness.NodeGauges{})
}
