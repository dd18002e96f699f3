//go:build e2e

package policyusage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/plugin/check"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/forgedrecords"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestPluginCheckInPolicyMode: `kubectl overcommit check` through the real kubectl passes every
// check of a complete policy-mode install (the policy, its binding, the records'
// ValidatingAdmissionPolicy, the webhook publishing as the install's ServiceAccount and
// confirming a usage node's target, metrics), and fails on the confirmation, and on that alone,
// once the webhook has been stopped for longer than metricsMaxAge. Not parallel: it stops the
// webhook.
func TestPluginCheckInPolicyMode(t *testing.T) {
	ctx := context.Background()
	cs := env.Client()
	node := cluster.KwokNode("check-policy", "4", "8Gi")
	node.Labels["e2e.overcommit.dev/check"] = "policy"
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Annotations[names.PolicyAnnotation] = names.PolicyUsage
	node.Annotations[names.CPURatioAnnotation] = "2"
	node.Spec.Taints = []corev1.Taint{{Key: "e2e.overcommit.dev/owner", Value: node.Name, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "check-policy-pod", Namespace: "default",
			Annotations: map[string]string{cluster.KwokUsageCPUAnnotation: "500m", cluster.KwokUsageMemoryAnnotation: "64Mi"}},
		Spec: corev1.PodSpec{NodeName: node.Name,
			Tolerations: []corev1.Toleration{{Key: "e2e.overcommit.dev/owner", Operator: corev1.TolerationOpEqual, Value: node.Name, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = cs.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})

	// The records' validation, as the install has it, for the rest of the test: the webhook
	// still publishes, since it runs as the ServiceAccount the policy allows.
	forgedrecords.InstallValidation(t, cs, deploy.ModePolicy)

	run := func() (*check.Report, bool) {
		t.Helper()
		cmd, err := harness.KubectlCmd(ctx, env, "overcommit", "check", "-l", "e2e.overcommit.dev/check=policy", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		out, runErr := cmd.Output()
		var r check.Report
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("check -o json printed no report (%v, exit %v): %s", err, runErr, out)
		}
		return &r, runErr != nil
	}
	notOK := func(r *check.Report) []string {
		var out []string
		for _, res := range r.Results {
			if res.Status != check.OK {
				out = append(out, string(res.Status)+" "+res.Check+": "+res.Message)
			}
		}
		return out
	}
	harness.Eventually(t, 2*time.Minute, "check passing in policy mode", func() error {
		r, exited := run()
		if got := notOK(r); exited || r.Mode != "policy" || r.OptedInNodes != 1 || len(got) != 0 {
			return fmt.Errorf("mode %s, %d nodes, exit non-zero %v, not ok: %q", r.Mode, r.OptedInNodes, exited, got)
		}
		return nil
	})
	r, _ := run()
	for _, want := range []string{"mode", "policy-binding", "records-validation", "settings", "published-records", "metrics-api", "records", "restart-risk"} {
		found := false
		for _, res := range r.Results {
			found = found || (res.Check == want && res.Status == check.OK)
		}
		if !found {
			t.Errorf("no passing %s check in %+v", want, r.Results)
		}
	}

	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The node goes before the webhook comes back, so that the restarted webhook's node
		// cache never holds it and the next test's node gauges start from the suite's nodes.
		_ = cs.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
		if err := env.StartWebhook(context.Background()); err != nil {
			t.Fatalf("restarting the webhook: %v", err)
		}
	}()
	harness.Eventually(t, 2*maxAge, "check failing on the confirmation", func() error {
		r, exited := run()
		got := notOK(r)
		if !exited || len(got) != 1 || !strings.HasPrefix(got[0], "fail published-records: the webhook last confirmed") {
			return fmt.Errorf("exit non-zero %v, not ok: %q", exited, got)
		}
		return nil
	})
}
