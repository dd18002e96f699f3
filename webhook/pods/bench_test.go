package pods

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
)

// BenchmarkServeHTTP is one review of the shared 20 KB pod asking for both fixture templates,
// through the wire layer: decode, inject, diff, encode.
func BenchmarkServeHTTP(b *testing.B) {
	store := &fakeTemplates{Set: sidecar.NewSet(""), ready: true}
	for name, body := range fixtures.SidecarTemplates() {
		t, err := sidecar.Parse(name, []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		store.Put(name, t, nil)
	}
	body, err := fixtures.PodReview("shop")
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wh := &admission.Webhook{Name: "pod", Handler: &Handler{Templates: store, Namespace: ownNamespace, Metrics: NewMetrics(reg), Log: log},
		Metrics: admission.NewMetrics(reg), Log: log}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := reviewtest.Post(wh, "/mutate-pod", body)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
			b.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
		}
	}
}
