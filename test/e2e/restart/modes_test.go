//go:build e2e

package restart

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// The MutatingAdmissionPolicy and the node webhook both match the opt-in label, so the cluster
// never has both: each switch first removes both and waits until an opted-in node comes back
// untouched, then installs one.

// usePolicyMode installs the node policy with the webhook process running, as a policy-mode
// install runs it (sidecars, settings); the scenario then kills it.
func usePolicyMode(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	nothingActive(t)
	startWebhook(t)
	if err := env.InstallNodePolicy(ctx, settings); err != nil {
		t.Fatal(err)
	}
}

// useWebhookMode runs the webhook with its settings ConfigMap and registers it.
func useWebhookMode(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	nothingActive(t)
	if err := cluster.EnsureSettings(ctx, env.Client(), settings); err != nil {
		t.Fatal(err)
	}
	startWebhook(t)
	if err := env.InstallWebhookConfiguration(ctx); err != nil {
		t.Fatal(err)
	}
}

// nothingActive removes the node policy and the webhook registration and waits until the
// apiserver applies neither.
func nothingActive(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := env.UninstallNodePolicy(ctx); err != nil {
		t.Fatal(err)
	}
	err := env.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, cluster.WebhookConfigName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, "neither the node policy nor the node webhook applied", func() error {
		if applied, err := probeApplied(ctx); err != nil || applied {
			return fmt.Errorf("dry-run create of an opted-in node still overcommitted (%v)", err)
		}
		return nil
	})
}

// probeApplied dry-runs the creation of an opted-in node and reports whether something
// overcommitted it.
func probeApplied(ctx context.Context) (bool, error) {
	cpu := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "overcommit-restart-probe",
			Labels:      map[string]string{names.EnabledLabel: names.EnabledValue},
			Annotations: map[string]string{names.CPURatioAnnotation: "2"}},
		Status: corev1.NodeStatus{Allocatable: cpu, Capacity: cpu},
	}
	got, err := env.Client().CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	_, applied := got.Annotations[names.AppliedAnnotation]
	return applied, nil
}

func startWebhook(t *testing.T) {
	t.Helper()
	if env.WebhookPID() != 0 {
		return
	}
	if err := env.StartWebhook(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func stopWebhook(t *testing.T) {
	t.Helper()
	if env.WebhookPID() == 0 {
		return
	}
	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
}
