package admission_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
	"github.com/overcommit-dev/overcommit/webhook/nodes"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// FuzzServeHTTP sends arbitrary bodies through the real node webhook: it must never panic, and
// every 200 answer must be a well-formed review for the same uid whose patch applies to the object.
func FuzzServeHTTP(f *testing.F) {
	seeds := []string{
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Node"},"name":"n","userInfo":{"username":"system:node:n"},"object":{"metadata":{"name":"n","labels":{"overcommit.dev/enabled":"true"},"annotations":{"overcommit.dev/cpu-ratio":"2"}},"status":{"allocatable":{"cpu":"3900m","memory":"15Gi"},"capacity":{"cpu":"4","memory":"16Gi"}}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","kind":{"version":"v1","kind":"Node"},"object":{"metadata":{"labels":{"overcommit.dev/enabled":"true"},"annotations":{"overcommit.dev/policy":"usage","overcommit.dev/applied":"{\"allocatable\":{\"cpu\":\"1\"}}","overcommit.dev/raw":"{}"}},"status":{"allocatable":{"cpu":"1"}}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3","kind":{"version":"v1","kind":"Node"},"object":{"metadata":{"labels":{"overcommit.dev/enabled":"true"},"annotations":{"overcommit.dev/cpu-ratio":"1e9"}},"status":{"allocatable":{"cpu":"9223372036854775807"},"capacity":{}}}}}`,
		`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u4"}}`,
		`{"request":null}`, `[]`, `null`, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u5","object":"x"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &nodes.Handler{Settings: settings.Fixed(policy.DefaultSettings()), Metrics: nodes.NewMetrics(reg), Log: log, Now: func() time.Time { return time.Unix(0, 0) }}
	m := admission.NewMetrics(reg)
	wh := &admission.Webhook{Name: "node", Handler: h, Metrics: m, Log: log, OnPanic: h.OnPanic}

	f.Fuzz(func(t *testing.T, body []byte) {
		rec := reviewtest.Post(wh, "/mutate-node", body)
		if p := testutil.ToFloat64(m.RequestCount("node", admission.OutcomePanic)); p != 0 {
			t.Fatalf("handler panicked on %q", body)
		}
		if rec.Code != http.StatusOK {
			return
		}
		var in struct {
			Request struct {
				UID    string          `json:"uid"`
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		// The streaming decoder is lenient where the apiserver is strict (control characters in
		// strings, anything in skipped fields): such bodies never arrive. Their answer must still
		// be a well-formed review; the checks below need a body that is valid JSON.
		strict := json.Unmarshal(body, &in) == nil
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("malformed response %s: %v", rec.Body.String(), err)
		}
		if !strict {
			return
		}
		if string(out.Response.UID) != in.Request.UID {
			t.Fatalf("uid %q answered as %q", in.Request.UID, out.Response.UID)
		}
		if !out.Response.Allowed {
			t.Fatalf("node write denied: %s", rec.Body.String())
		}
		reviewtest.Apply(t, in.Request.Object, out.Response)
	})
}
