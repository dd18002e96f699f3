package pods

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
)

// hostileNames is an inject annotation of n distinct unknown template names ("t0,t1,...").
func hostileNames(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "t%d", i)
	}
	return b.String()
}

// hostileAnnotation is an inject annotation as large as a review body can carry: distinct short
// names filling about 3 MiB, less room for the rest of the review.
func hostileAnnotation() string {
	const size = admission.MaxRequestBytes - 4<<10
	var b strings.Builder
	b.Grow(size + 16)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "t%d", i)
	}
	return b.String()[:size]
}

// BenchmarkInjectHostile is the cost of one review of a pod whose inject annotation was written
// to cost the webhook CPU: many distinct unknown names, or the largest annotation a review can
// carry. Every case is denied.
func BenchmarkInjectHostile(b *testing.B) {
	cases := []struct {
		name   string
		inject string
	}{
		{"names=5000", hostileNames(5000)},
		{"names=20000", hostileNames(20000)},
		{"annotation=3MiB", hostileAnnotation()},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b)
			body := review(b, encode(b, pod(tc.inject)), "shop", false)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rec := reviewtest.Post(f.wh, "/mutate-pod", body)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":false`)) {
					b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkInjectLargePod is one review of a pod with many containers asking for both fixture
// templates, which add env and mounts to every container. 1,000 containers are injected;
// 60,000 (a 2 MB pod) would need a patch over sidecar.MaxPatchBytes and are denied.
func BenchmarkInjectLargePod(b *testing.B) {
	for _, n := range []int{1000, 60000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			f := newFixture(b)
			p := pod("logs,mesh")
			for i := range n {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i)})
			}
			body := review(b, encode(b, p), "shop", false)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var out int
			for b.Loop() {
				rec := reviewtest.Post(f.wh, "/mutate-pod", body)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
				}
				out = rec.Body.Len()
			}
			b.ReportMetric(float64(out), "response-bytes")
		})
	}
}
