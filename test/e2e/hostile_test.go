//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestNodeHostileInput (webhook mode) sends the hardening issue's inputs through the real
// apiserver to the running webhook, as dry-run status writes of an opted-in node: amounts that
// once stored a negative capacity (which the apiserver then refuses on every status write of
// the node) or cpu 0 are stored as sent, and hostile annotation values are answered at once.
func TestNodeHostileInput(t *testing.T) {
	t.Parallel()
	const name = "hostile-1"
	isolatedNode(t, name, "4", "16Gi")
	optIn(t, name, names.CPURatioAnnotation+"=2", names.MemoryRatioAnnotation+"=1.5")
	waitCPU(t, name, "8")
	ctx := context.Background()
	nodes := kube(t).CoreV1().Nodes()
	dryRun := metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}

	for _, tc := range []struct{ alloc, capacity string }{
		{"4e15", "8e15"}, {"10P", "10P"}, {"9223372036854775807", "9223372036854775807"}, {"1e400", "1e400"},
	} {
		n := getNode(t, name)
		n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse(tc.alloc)
		n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse(tc.capacity)
		got, err := nodes.UpdateStatus(ctx, n, dryRun)
		if err != nil {
			t.Errorf("cpu %s of %s: the status write was refused: %v", tc.alloc, tc.capacity, err)
			continue
		}
		a, c := got.Status.Allocatable[corev1.ResourceCPU], got.Status.Capacity[corev1.ResourceCPU]
		if a.Cmp(resource.MustParse(tc.alloc)) != 0 || c.Cmp(resource.MustParse(tc.capacity)) != 0 {
			t.Errorf("cpu %s of %s: stored %s of %s, want it as sent", tc.alloc, tc.capacity, a.String(), c.String())
		}
	}

	// Annotations anyone who may edit the node can set. (The records are left out: another test
	// installs an admission policy that refuses their edits; the unit and policy-mode tests
	// cover them.)
	long := strings.Repeat("9", 100_000)
	for _, a := range []struct{ key, value string }{
		{names.CPURatioAnnotation, "1e-2000000000"},
		{names.CPURatioAnnotation, long},
		{names.PolicyAnnotation, long},
		{names.MemoryRatioAnnotation, long},
	} {
		n := getNode(t, name)
		n.Annotations[a.key] = a.value
		start := time.Now()
		got, err := nodes.UpdateStatus(ctx, n, dryRun)
		took := time.Since(start)
		if err != nil {
			t.Errorf("%s=%.24s: the status write was refused: %v", a.key, a.value, err)
			continue
		}
		if took > 5*time.Second {
			t.Errorf("%s=%.24s: the status write took %s", a.key, a.value, took)
		}
		// An unreadable ratio counts as 1; the others leave the ratio of 2.
		want := "8"
		if a.key == names.CPURatioAnnotation {
			want = "4"
		}
		if c := got.Status.Allocatable[corev1.ResourceCPU]; c.String() != want {
			t.Errorf("%s=%.24s: allocatable cpu %s, want %s", a.key, a.value, c.String(), want)
		}
	}
}
