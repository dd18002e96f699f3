package nodes

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
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
	body, err := fixtures.NodeReview("worker-1", "u")
	if err != nil {
		t.Fatal(err)
	}
	// The object is sent twice (object and oldObject).
	if len(body) < 2*14_000 || len(body) > 2*17_000 {
		t.Errorf("review is %d bytes; the benchmark wants a ~15 KB Node", len(body))
	}
}
