package nodes

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// realisticNode is a Node as a cloud kubelet reports it: 20 labels, 50 images, the usual
// conditions and addresses, about 15 KB of JSON.
func realisticNode(tb testing.TB) *corev1.Node {
	n := testNode(map[string]string{names.EnabledLabel: "true"}, map[string]string{
		names.CPURatioAnnotation:                                 "2",
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
	})
	for i := 0; len(n.Labels) < 20; i++ {
		n.Labels[fmt.Sprintf("topology.example.com/label-%02d", i)] = fmt.Sprintf("value-%02d", i)
	}
	for i := 0; i < 50; i++ {
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{
			Names: []string{
				fmt.Sprintf("registry.example.com/team-%02d/service-%02d@sha256:%064x", i, i, i*7919),
				fmt.Sprintf("registry.example.com/team-%02d/service-%02d:v1.%d.0", i, i, i),
				fmt.Sprintf("mirror.example.net/team-%02d/service-%02d:v1.%d", i, i, i),
			},
			SizeBytes: int64(100_000_000 + i),
		})
	}
	for _, c := range []corev1.NodeConditionType{"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"} {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: c, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficient" + string(c), Message: "kubelet has sufficient resources available"})
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.12"}, {Type: corev1.NodeHostName, Address: "worker-1"}}
	n.Status.NodeInfo = corev1.NodeSystemInfo{MachineID: "ec2a5d5b1f0a4e7e9b1c", KernelVersion: "6.1.0-21-cloud-amd64", OSImage: "Debian GNU/Linux 12 (bookworm)",
		ContainerRuntimeVersion: "containerd://1.7.13", KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"}
	n.Status.Allocatable["ephemeral-storage"] = resource.MustParse("95551679124")
	return n
}

func benchmarkReview(b *testing.B, user string) {
	f := newFixture(b, nil)
	body := review(b, realisticNode(b), admissionv1.Update, user, false)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/mutate-node", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.wh.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d", rec.Code)
		}
	}
}

// BenchmarkNodeReview is the node webhook end to end, minus TLS: decode a ~30 KB review (a
// 15 KB Node as object and oldObject), compute, build the patch, encode the response.
func BenchmarkNodeReview(b *testing.B) {
	b.Run("kubelet", func(b *testing.B) { benchmarkReview(b, "system:node:worker-1") })
	b.Run("heartbeat", func(b *testing.B) { benchmarkReview(b, "system:serviceaccount:kube-system:node-controller") })
}

func TestRealisticNodeSize(t *testing.T) {
	body := review(t, realisticNode(t), admissionv1.Update, "u", false)
	// The object is sent twice (object and oldObject).
	if len(body) < 2*14_000 || len(body) > 2*17_000 {
		t.Errorf("review is %d bytes; the benchmark wants a ~15 KB Node", len(body))
	}
}
