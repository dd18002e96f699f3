package nodes

import (
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
)

func benchmarkReview(b *testing.B, user string) {
	f := newFixture(b, nil)
	body, err := fixtures.NodeReview("worker-1", user)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rec := reviewtest.Post(f.wh, "/mutate-node", body); rec.Code != http.StatusOK {
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
	body, err := fixtures.NodeReview("worker-1", "u")
	if err != nil {
		t.Fatal(err)
	}
	// The object is sent twice (object and oldObject).
	if len(body) < 2*14_000 || len(body) > 2*17_000 {
		t.Errorf("review is %d bytes; the benchmark wants a ~15 KB Node", len(body))
	}
}

// BenchmarkNodeReviewHostile is a controller's heartbeat over an overcommitted node, as it is and
// with a hostile record: the exponent one costs what the normal review costs, the long one what
// reading its bytes costs.
func BenchmarkNodeReviewHostile(b *testing.B) {
	f := newFixture(b, nil)
	n := testNode(optIn, map[string]string{})
	n = apply(b, n, f.send(b, review(b, n, admissionv1.Update, "system:node:worker-1", false)))
	for _, bc := range []struct {
		name, key, value string
	}{
		{name: "normal"},
		{name: "raw exponent", key: names.RawAnnotation, value: `{"allocatable":{"cpu":"1e-2000000000"}}`},
		{name: "applied exponent", key: names.AppliedAnnotation, value: `{"allocatable":{"cpu":"1e-2000000000"}}`},
		{name: "cpu-ratio exponent", key: names.CPURatioAnnotation, value: "1e-2000000000"},
		{name: "raw 256KiB", key: names.RawAnnotation, value: `{"allocatable":{"cpu":"` + strings.Repeat("9", 256<<10) + `"}}`},
	} {
		m := n.DeepCopy()
		if bc.key != "" {
			m.Annotations[bc.key] = bc.value
		}
		body := review(b, m, admissionv1.Update, "system:serviceaccount:kube-system:node-controller", false)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if rec := reviewtest.Post(f.wh, "/mutate-node", body); rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}
