//go:build e2e

// Package nodewrites drives a node through the status writes that used to compound its
// allocatable; the e2e suites of both node-policy modes run it.
package nodewrites

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Run sends 1,000 mixed status writes to a new opted-in node (cpu x2, memory x1.5) named name and
// checks the stored allocatable exactly after each: the kubelet reporting its raw view (now and
// then a new one), the kubelet's conditions-only diff patch (as it sends when its cached copy is
// current), node-problem-detector style condition patches, a controller's PUT of the status it
// read, kubectl's empty status patch, and dry runs of each. kubelet must act as system:node:name.
func Run(t *testing.T, admin, kubelet kubernetes.Interface, name string) {
	ctx := context.Background()
	raw := struct{ cpu, mem int64 }{4000, 8 << 30}
	rawList := func() corev1.ResourceList {
		return corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(raw.cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(raw.mem, resource.BinarySI),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{names.EnabledLabel: names.EnabledValue},
			Annotations: map[string]string{names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "1.5"}},
		Status: corev1.NodeStatus{Allocatable: rawList(), Capacity: rawList()},
	}
	if _, err := kubelet.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	counts := map[string]int{}
	for i := range 1000 {
		dry := rng.IntN(8) == 0
		opts := metav1.PatchOptions{}
		if dry {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		var (
			kind string
			got  *corev1.Node
			err  error
		)
		now := time.Now().UTC().Format(time.RFC3339)
		switch rng.IntN(5) {
		case 0:
			kind = "kubelet reports its view"
			if !dry && rng.IntN(20) == 0 {
				kind = "kubelet reports a new raw view"
				raw.cpu, raw.mem = int64(1+rng.IntN(64))*500, int64(1+rng.IntN(64))<<28
			}
			patch := fmt.Sprintf(`{"status":{"allocatable":{"cpu":%q,"memory":%q},"capacity":{"cpu":%q,"memory":%q},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":%q}]}}`,
				fmt.Sprintf("%dm", raw.cpu), fmt.Sprint(raw.mem), fmt.Sprintf("%dm", raw.cpu), fmt.Sprint(raw.mem), now)
			got, err = kubelet.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), opts, "status")
		case 1:
			kind = "kubelet diff patch with conditions only"
			patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":%q}]}}`, now)
			got, err = kubelet.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), opts, "status")
		case 2:
			kind = "node-problem-detector condition"
			patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"KernelDeadlock","status":"False","reason":"KernelHasNoDeadlock","lastHeartbeatTime":%q}]}}`, now)
			got, err = admin.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), opts, "status")
		case 3:
			kind = "controller PUT of the status it read"
			err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
				cur, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				got, err = admin.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{DryRun: opts.DryRun})
				return err
			})
		default:
			kind = "kubectl empty status patch"
			got, err = admin.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(`{"status":{}}`), opts, "status")
		}
		if dry {
			kind = "dry run: " + kind
		}
		counts[kind]++
		if err != nil {
			t.Fatalf("write %d (%s): %v", i, kind, err)
		}
		check := func(what string, n *corev1.Node) {
			cpu, mem := n.Status.Allocatable[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceMemory]
			if cpu.MilliValue() != raw.cpu*2 || mem.Value() != raw.mem*3/2 {
				t.Fatalf("write %d (%s): %s allocatable cpu %s memory %s, want %dm and %d (raw %dm, %d)",
					i, kind, what, cpu.String(), mem.String(), raw.cpu*2, raw.mem*3/2, raw.cpu, raw.mem)
			}
		}
		check("returned", got)
		stored, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check("stored", stored)
	}
	t.Logf("1000 writes, allocatable exact after each: %v", counts)
}
