package cmd

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
)

// withPending adds pods the scheduler has not placed, created at different times, and one bound
// to node-d that is still Pending (starting), which takes node-d's room and is not listed:
//
//	p-old    3 cpu   1Gi   two hours old
//	p-mid    2 cpu   1Gi   an hour old
//	p-big    16 cpu  1Gi   fits nowhere
//	p-young  1 cpu   3Gi   a minute old
//	starting 1 cpu   1Gi   bound to node-d
func withPending(o testcluster.Options) testcluster.Options {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pending := func(name, node, cpu, memory string, age time.Duration) *corev1.Pod {
		p := testcluster.Pod(name, node, cpu, memory)
		p.Status.Phase = corev1.PodPending
		p.CreationTimestamp = metav1.NewTime(t0.Add(-age))
		return p
	}
	o.Objects = append(o.Objects,
		pending("p-young", "", "1", "3Gi", time.Minute),
		pending("p-big", "", "16", "1Gi", time.Hour),
		pending("p-mid", "", "2", "1Gi", time.Hour),
		pending("p-old", "", "3", "1Gi", 2*time.Hour),
		pending("starting", "node-d", "1", "1Gi", time.Hour),
	)
	return o
}

// TestGoldenPreviewFit runs preview --pending and --fit against the fixture (see fixture and
// withPending) and compares everything they print; none of them may change the cluster.
func TestGoldenPreviewFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
	}{
		// After cpu x2: p-old goes to node-a (5.5 cpu free), p-mid after it to node-a, p-young to
		// node-b; now only p-mid (node-b, 2 free) and p-young (node-a) fit.
		{name: "preview-pending", args: []string{"preview", "--all", "--cpu-ratio", "2", "--pending"}},
		{name: "preview-pending-json", args: []string{"preview", "--all", "--cpu-ratio", "2", "--pending", "-o", "json"}},
		// Only the opted-in nodes: node-b is at cpu x2 already and node-c's usage policy falls
		// back, so nothing changes.
		{name: "preview-pending-enabled", args: []string{"preview", "--pending"}},
		{name: "preview-fit", args: []string{"preview", "--all", "--cpu-ratio", "2", "--fit", "-f", "testdata/fit-deployment.yaml"}},
		{name: "preview-fit-stdin-json", args: []string{"preview", "-l", "pool=batch", "--memory-ratio", "1.5", "--fit", "-f", "-", "-o", "json"},
			stdin: `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tiny"}, "spec": {"containers": [{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "250m", "memory": "3Gi"}}}]}}`},
		{name: "preview-fit-yaml", args: []string{"preview", "node-a", "--cpu-ratio", "2", "--fit", "-f", "testdata/fit-pod.json", "-o", "yaml"}},
		{name: "preview-fit-not-a-workload", args: []string{"preview", "--all", "--fit", "-f", "testdata/fit-service.yaml"}},
		{name: "preview-fit-two-objects", args: []string{"preview", "--all", "--fit", "-f", "testdata/fit-two-pods.yaml"}},
		{name: "preview-fit-missing-file", args: []string{"preview", "--all", "--fit", "-f", "testdata/none.yaml"}},
		{name: "preview-fit-not-yaml", args: []string{"preview", "--all", "--fit", "-f", "-"}, stdin: "kind: [\n"},
		{name: "preview-fit-no-file", args: []string{"preview", "--all", "--fit"}},
		{name: "preview-file-without-fit", args: []string{"preview", "--all", "-f", "testdata/fit-pod.json"}},
		{name: "preview-pending-and-fit", args: []string{"preview", "--all", "--pending", "--fit", "-f", "testdata/fit-pod.json"}},
		{name: "preview-pending-server", args: []string{"preview", "node-a", "--pending", "--server"}},
		{name: "preview-pending-patch", args: []string{"preview", "node-a", "--pending", "-o", "patch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(withPending(withSettings()))
			stdout, stderr, err := runWithStdin(t, c, tc.stdin, tc.args...)
			compareGolden(t, tc.name, "$ kubectl overcommit "+strings.Join(tc.args, " ")+"\n"+transcript(stdout, stderr, err))
			if writes := testcluster.Writes(c.Kube); len(writes) > 0 {
				t.Errorf("the command changed the cluster:\n%s", strings.Join(writes, "\n"))
			}
		})
	}
}
