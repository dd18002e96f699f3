//go:build e2e

package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/overcommit-dev/overcommit/deploy/nodepolicy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

var env *cluster.Cluster

// The webhook's history flags in this suite, short enough for a run of minutes (the defaults are
// a 1h window, trusted after 10m, raised after 10m).
const (
	// window is --usage-window, the shortest allowed: at metrics-server's 10 s resolution it holds
	// about 7 samples, so its 95th percentile is its maximum.
	window = time.Minute
	// minWindow is --usage-min-window: about 4 samples before the statistic is trusted.
	minWindow = 30 * time.Second
	// raiseAfter is --usage-raise-after, longer than the window so that a raise too early for
	// either shows (see checkChanges).
	raiseAfter = 90 * time.Second
	// refresh is --metrics-refresh-interval: one NodeMetrics LIST (and publishing round) every 5 s.
	refresh = 5 * time.Second
	// heartbeat is kwok's node status interval: every stored change rides on such a write.
	heartbeat = 2 * time.Second
)

// modeLabel splits the opted-in nodes between the two modes; see splitModes.
const modeLabel = "e2e.overcommit.dev/mode"

// The two node-policy modes, as the values of modeLabel.
const (
	webhookMode = "webhook"
	policyMode  = "policy"
)

var modes = []string{webhookMode, policyMode}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &env, harness.Suite{
		Cluster: cluster.Options{Kwok: true, KwokHeartbeat: heartbeat, MetricsServer: true,
			Webhook: &cluster.WebhookOptions{Args: []string{
				"--metrics-refresh-interval=" + refresh.String(),
				"--usage-window=" + window.String(),
				"--usage-min-window=" + minWindow.String(),
				"--usage-raise-after=" + raiseAfter.String(),
				// As deploy/modes/policy runs it; the webhook-mode nodes ignore what it publishes.
				"--publish-usage-targets",
			}}},
		Setup: splitModes,
	}))
}

// splitModes runs both node-policy modes in one cluster on disjoint nodes: the node webhook
// registration and the MutatingAdmissionPolicyBinding are the shipped ones, each narrowed to
// the nodes carrying its modeLabel value, so no node is ever mutated by both. It returns once
// the apiserver applies each to its nodes and neither to an opted-in node without the label.
func splitModes(ctx context.Context, c *cluster.Cluster) error {
	api := c.Client().AdmissionregistrationV1()
	mwc, err := api.MutatingWebhookConfigurations().Get(ctx, cluster.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	narrowed := false
	for i := range mwc.Webhooks {
		if wh := &mwc.Webhooks[i]; wh.Name == cluster.NodeWebhookName {
			wh.ObjectSelector.MatchLabels[modeLabel] = webhookMode
			narrowed = true
		}
	}
	if !narrowed {
		return fmt.Errorf("MutatingWebhookConfiguration %s has no %s", cluster.WebhookConfigName, cluster.NodeWebhookName)
	}
	if _, err := api.MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		return err
	}
	binding := nodepolicy.Binding()
	binding.Spec.MatchResources = &admissionregistrationv1.MatchResources{
		ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{modeLabel: policyMode}},
	}
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, nodepolicy.Policy(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The apiserver loads both through informers: probe until each mode answers for its nodes only.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = nil
		for _, m := range []string{webhookMode, policyMode, ""} {
			applied, err := probe(ctx, c, m)
			switch {
			case err != nil:
				last = err
			case m != "" && !applied:
				last = fmt.Errorf("an opted-in node labelled %s=%s is not overcommitted", modeLabel, m)
			case m == "" && applied:
				last = fmt.Errorf("an opted-in node without %s is overcommitted", modeLabel)
			}
		}
		return last == nil, nil
	})
	if err != nil {
		return errors.Join(err, last)
	}
	return nil
}

// probe dry-runs the creation of an opted-in node in mode (none when "") and reports whether
// something overcommitted it.
func probe(ctx context.Context, c *cluster.Cluster, mode string) (bool, error) {
	cpu := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "overcommit-history-probe",
			Labels:      map[string]string{names.EnabledLabel: names.EnabledValue},
			Annotations: map[string]string{names.CPURatioAnnotation: "2"}},
		Status: corev1.NodeStatus{Allocatable: cpu, Capacity: cpu},
	}
	if mode != "" {
		n.Labels[modeLabel] = mode
	}
	got, err := c.Client().CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	_, applied := got.Annotations[names.AppliedAnnotation]
	return applied, nil
}
