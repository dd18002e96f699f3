package pods

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
)

type templateMap map[string]*sidecar.Template

func (m templateMap) Get(name string) (*sidecar.Template, error) {
	if t, ok := m[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("%w %q", sidecar.ErrNotFound, name)
}

// BenchmarkPodReview is the pod webhook end to end, minus TLS: a 20 KB pod asking for two
// templates (one native), decoded, injected, diffed into a JSON patch and answered.
func BenchmarkPodReview(b *testing.B) {
	tmpls := templateMap{}
	for name, body := range fixtures.SidecarTemplates() {
		t, err := sidecar.Parse(name, []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		tmpls[name] = t
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{Templates: tmpls, Namespace: "overcommit-system", Metrics: NewMetrics(reg), Log: log}
	wh := &admission.Webhook{Name: "pod", Handler: h, Metrics: admission.NewMetrics(reg), Log: log}
	body, err := fixtures.PodReview("shop")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/mutate-pod", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"patchType":"JSONPatch"`)) {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.String())
		}
	}
}
