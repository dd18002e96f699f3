//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/plugin/fit"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestPluginPreviewFit: on a 2-cpu node with 1500m requested, the real scheduler leaves two pods
// of 1 cpu each Pending; preview --pending says neither fits now and both fit after
// --cpu-ratio 2 (4 cpu, 2500m free), and --fit -f counts the replicas of a 500m pod: 1 now, 5
// after. Nothing is written: the node keeps its allocatable.
func TestPluginPreviewFit(t *testing.T) {
	t.Parallel()
	const name = "plugin-fit"
	node := pluginNode(t, name, "2", "4Gi", "fit")
	waitSettingsPublished(t)

	filler := podOn(name, "fit-filler", "1500m", "10m")
	createPods(t, filler)
	harness.Eventually(t, time.Minute, "the filler pod bound to "+name, func() error {
		p, err := kube(t).CoreV1().Pods("default").Get(context.Background(), filler.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != name {
			return fmt.Errorf("bound to %q", p.Spec.NodeName)
		}
		return nil
	})
	pending := []*corev1.Pod{podOn(name, "fit-pending-1", "1", "10m"), podOn(name, "fit-pending-2", "1", "10m")}
	createPods(t, pending...)
	for _, p := range pending {
		harness.Eventually(t, time.Minute, "the scheduler to leave "+p.Name+" unschedulable", func() error {
			got, err := kube(t).CoreV1().Pods("default").Get(context.Background(), p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					return nil
				}
			}
			return fmt.Errorf("node %q, conditions %v", got.Spec.NodeName, got.Status.Conditions)
		})
	}

	var report fit.Pending
	if err := json.Unmarshal([]byte(mustOvercommit(t, "preview", name, "--cpu-ratio", "2", "--pending", "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	// Other tests' Pending pods may be listed too; this test's are the ones named fit-pending-*.
	got := map[string]fit.PendingPod{}
	for _, p := range report.Pods {
		if p.Namespace == "default" && (p.Name == "fit-pending-1" || p.Name == "fit-pending-2") {
			got[p.Name] = p
		}
	}
	want := map[string]fit.PendingPod{
		"fit-pending-1": {Namespace: "default", Name: "fit-pending-1", CPU: "1", Memory: "64Mi", After: name},
		"fit-pending-2": {Namespace: "default", Name: "fit-pending-2", CPU: "1", Memory: "64Mi", After: name},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("preview --pending (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{name}, report.Nodes); diff != "" {
		t.Errorf("previewed nodes (-want +got):\n%s", diff)
	}

	file := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.example/app:1
        resources: {requests: {cpu: 500m, memory: 64Mi}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var replicas fit.Replicas
	if err := json.Unmarshal([]byte(mustOvercommit(t, "preview", name, "--cpu-ratio", "2", "--fit", "-f", file, "-o", "json")), &replicas); err != nil {
		t.Fatal(err)
	}
	wantReplicas := []fit.NodeReplicas{{Node: name, Now: 1, After: 5}}
	if diff := cmp.Diff(wantReplicas, replicas.Nodes); diff != "" || replicas.Now != 1 || replicas.After != 5 {
		t.Errorf("preview --fit: total %d now, %d after; per node (-want +got):\n%s", replicas.Now, replicas.After, diff)
	}

	if _, errOut, err := overcommit(t, "preview", name, "--fit", "-f", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Errorf("preview --fit with a missing file succeeded")
	} else if errOut == "" {
		t.Errorf("preview --fit with a missing file printed no error")
	}
	if diff := cmp.Diff(storedOf(node), storedOf(getNode(t, name))); diff != "" {
		t.Errorf("the previews changed the node (-before +after):\n%s", diff)
	}
}
