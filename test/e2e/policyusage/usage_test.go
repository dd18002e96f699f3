//go:build e2e

// Package policyusage runs the usage policy in policy mode on the local control plane: kwok pods
// whose usage metrics-server measures, the webhook publishing each node's target, and the
// MutatingAdmissionPolicy applying it inside kube-apiserver on the node's own status writes.
package policyusage

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

var env *cluster.Cluster

// maxAge is the settings' metricsMaxAgeSeconds in this suite: how long a confirmation of the
// usage targets is trusted.
const maxAge = 30 * time.Second

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &env, harness.Suite{
		Cluster: cluster.Options{Kwok: true, KwokHeartbeat: 2 * time.Second, MetricsServer: true, NodePolicy: true,
			// No warm-up or hysteresis: this suite checks the published target on steady usage;
			// test/e2e/history checks the window in both modes.
			Webhook: &cluster.WebhookOptions{Args: []string{"--metrics-refresh-interval=5s", "--usage-min-window=0", "--usage-raise-after=0"},
				// The ServiceAccount and RBAC of deploy/ in policy mode, not an admin: the
				// records' ValidatingAdmissionPolicy lets only that ServiceAccount publish.
				Kubeconfig: harness.WebhookKubeconfig(deploy.ModePolicy)}},
		Setup: func(ctx context.Context, c *cluster.Cluster) error {
			s := policy.DefaultSettings()
			s.MaxMetricsAge = maxAge
			if err := cluster.EnsureSettings(ctx, c.Client(), s); err != nil {
				return fmt.Errorf("writing the settings: %w", err)
			}
			return nil
		},
		// Everything the suite made the webhook do was allowed by deploy/'s RBAC.
		Verify: harness.VerifyNotForbidden,
	}))
}

// TestUsagePolicyInTheAPIServer: with the webhook publishing, kwok's own heartbeats store the
// usage policy's allocatable (A + R - 1.2U within [A, 2A]); with the webhook stopped, the
// confirmation ages out and the next heartbeats store the raw allocatable, with no webhook on
// the path.
func TestUsagePolicyInTheAPIServer(t *testing.T) {
	ctx := context.Background()
	cs := env.Client()
	node := cluster.KwokNode("usage-policy-1", "10", "32Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Annotations[names.PolicyAnnotation] = names.PolicyUsage
	node.Annotations[names.CPURatioAnnotation] = "2"
	node.Spec.Taints = []corev1.Taint{{Key: "e2e.overcommit.dev/owner", Value: node.Name, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 { // requests 8 CPUs, uses 2
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("usage-pod-%d", i), Namespace: "default",
				Annotations: map[string]string{cluster.KwokUsageCPUAnnotation: "500m", cluster.KwokUsageMemoryAnnotation: "64Mi"}},
			Spec: corev1.PodSpec{
				NodeName:    node.Name,
				Tolerations: []corev1.Toleration{{Key: "e2e.overcommit.dev/owner", Operator: corev1.TolerationOpEqual, Value: node.Name, Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// A = 10, R = 8, U ~ 2: about 15.6 CPUs, stored by status writes the webhook never sees.
	var last *corev1.Node
	harness.Eventually(t, 3*time.Minute, "the usage policy's allocatable from the published target", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		last = n
		if got := n.Status.Allocatable.Cpu().MilliValue(); got < 15_000 || got > 16_000 {
			return fmt.Errorf("allocatable cpu %dm, want about 15600m (target %q)", got, n.Annotations[names.UsageTargetAnnotation])
		}
		return nil
	})
	if _, err := policy.ParseUsageTarget(last.Annotations[names.UsageTargetAnnotation]); err != nil {
		t.Errorf("published target: %v", err)
	}
	if a, err := policy.ParseApplied(last.Annotations[names.AppliedAnnotation]); err != nil || a.Policy != names.PolicyUsage {
		t.Errorf("applied %q: %v", last.Annotations[names.AppliedAnnotation], err)
	}

	// The plugin previews the usage policy from the same published target.
	harness.Eventually(t, 30*time.Second, "preview agreeing with the stored usage-policy allocatable", func() error {
		p := previewOf(t, node.Name)
		n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got, stored := p.Items[0].After.Allocatable.Cpu(), n.Status.Allocatable.Cpu(); got.Cmp(*stored) != 0 {
			return fmt.Errorf("preview says cpu %s, stored %s", got, stored)
		}
		return nil
	})

	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.StartWebhook(context.Background()); err != nil {
			t.Errorf("restarting the webhook: %v", err)
		}
	})
	harness.Eventually(t, maxAge+time.Minute, "the raw allocatable once the confirmation is too old", func() error {
		// A status write as the kubelet's heartbeat would make it, in case kwok's is slow.
		_, _ = cs.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, []byte(`{"status":{}}`), metav1.PatchOptions{}, "status")
		n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := n.Status.Allocatable.Cpu().String(); got != "10" {
			return fmt.Errorf("allocatable cpu %s", got)
		}
		return nil
	})
}
