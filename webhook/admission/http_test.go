package admission_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
)

// uid is the uid of the reviews the node fixture and reviewtest build.
const uid = string(reviewtest.UID)

func newWebhook(h admission.Handler) (*admission.Webhook, *admission.Metrics) {
	m := admission.NewMetrics(prometheus.NewRegistry())
	return &admission.Webhook{Name: "test", Handler: h, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, m
}

var echo = admission.HandlerFunc(func(_ context.Context, req *admission.Request) admission.Response {
	return admission.Allowed("saw " + req.Name)
})

func TestServeHTTPRejectsBadRequests(t *testing.T) {
	valid := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","name":"n"}}`
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantMsg     string
	}{
		{name: "GET", method: http.MethodGet, contentType: "application/json", body: valid, wantCode: 405, wantMsg: "method GET not allowed"},
		{name: "wrong content type", method: http.MethodPost, contentType: "text/plain", body: valid, wantCode: 415, wantMsg: `content type "text/plain" not supported`},
		{name: "no content type", method: http.MethodPost, body: valid, wantCode: 415, wantMsg: "want application/json"},
		{name: "empty body", method: http.MethodPost, contentType: "application/json", body: "", wantCode: 400, wantMsg: "empty request body"},
		{name: "malformed JSON", method: http.MethodPost, contentType: "application/json", body: `{"apiVersion":`, wantCode: 400, wantMsg: "malformed AdmissionReview"},
		{name: "not an object", method: http.MethodPost, contentType: "application/json", body: `[1,2]`, wantCode: 400, wantMsg: "malformed AdmissionReview"},
		{name: "v1beta1", method: http.MethodPost, contentType: "application/json",
			body: strings.Replace(valid, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), wantCode: 400, wantMsg: "only admission.k8s.io/v1 AdmissionReview is served"},
		{name: "wrong kind", method: http.MethodPost, contentType: "application/json",
			body: strings.Replace(valid, `"kind":"AdmissionReview"`, `"kind":"Pod"`, 1), wantCode: 400, wantMsg: "only admission.k8s.io/v1 AdmissionReview"},
		{name: "missing request", method: http.MethodPost, contentType: "application/json",
			body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, wantCode: 400, wantMsg: "has no request"},
		{name: "missing uid", method: http.MethodPost, contentType: "application/json",
			body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, wantCode: 400, wantMsg: "has no uid"},
		{name: "over 3 MiB", method: http.MethodPost, contentType: "application/json",
			body:     `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","name":"` + strings.Repeat("a", admission.MaxRequestBytes) + `"}}`,
			wantCode: 413, wantMsg: "exceeds 3145728 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, m := newWebhook(echo)
			req := httptest.NewRequest(tt.method, "/mutate-node", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantMsg) {
				t.Errorf("got HTTP %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantMsg)
			}
			if c := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeBadRequest)); c != 1 {
				t.Errorf("bad_request count = %v, want 1", c)
			}
		})
	}
}

// A body over the limit without a Content-Length (chunked) is cut off too.
func TestServeHTTPChunkedTooLarge(t *testing.T) {
	wh, _ := newWebhook(echo)
	body := io.MultiReader(strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","request":{"name":"`),
		strings.NewReader(strings.Repeat("a", admission.MaxRequestBytes)), strings.NewReader(`"}}`))
	req := httptest.NewRequest(http.MethodPost, "/mutate-node", body)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("got HTTP %d, want 413", rec.Code)
	}
}

func TestServeHTTPResponses(t *testing.T) {
	tests := []struct {
		name        string
		resp        admission.Response
		wantOutcome string
		check       func(t *testing.T, r *admissionv1.AdmissionResponse)
	}{
		{name: "allowed", resp: admission.Allowed("w1"), wantOutcome: admission.OutcomeAllowed,
			check: func(t *testing.T, r *admissionv1.AdmissionResponse) {
				if !r.Allowed || r.Patch != nil || r.PatchType != nil || len(r.Warnings) != 1 {
					t.Errorf("%+v", r)
				}
			}},
		{name: "patched", resp: admission.Patched([]byte(`[{"op":"add","path":"/a","value":1}]`)), wantOutcome: admission.OutcomePatched,
			check: func(t *testing.T, r *admissionv1.AdmissionResponse) {
				if !r.Allowed || string(r.Patch) != `[{"op":"add","path":"/a","value":1}]` || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Errorf("%+v", r)
				}
			}},
		{name: "empty patch is no patch", resp: admission.Patched([]byte(`[]`)), wantOutcome: admission.OutcomeAllowed,
			check: func(t *testing.T, r *admissionv1.AdmissionResponse) {
				if r.Patch != nil || r.PatchType != nil {
					t.Errorf("%+v", r)
				}
			}},
		{name: "denied", resp: admission.Denied(0, "no"), wantOutcome: admission.OutcomeDenied,
			check: func(t *testing.T, r *admissionv1.AdmissionResponse) {
				if r.Allowed || r.Result == nil || r.Result.Code != 403 || r.Result.Message != "no" {
					t.Errorf("%+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, m := newWebhook(admission.HandlerFunc(func(context.Context, *admission.Request) admission.Response { return tt.resp }))
			tt.check(t, reviewtest.Send(t, wh, "/x", reviewtest.Encode(t, admissionv1.AdmissionRequest{})))
			if c := testutil.ToFloat64(m.RequestCount("test", tt.wantOutcome)); c != 1 {
				t.Errorf("outcome %s count = %v, want 1", tt.wantOutcome, c)
			}
		})
	}
}

func TestServeHTTPPanicWithoutHookDenies(t *testing.T) {
	wh, m := newWebhook(admission.HandlerFunc(func(context.Context, *admission.Request) admission.Response { panic("boom") }))
	if resp := reviewtest.Send(t, wh, "/x", reviewtest.Encode(t, admissionv1.AdmissionRequest{})); resp.Allowed {
		t.Fatalf("a panic was answered allowed: %+v", resp)
	}
	if c := testutil.ToFloat64(m.RequestCount("test", admission.OutcomePanic)); c != 1 {
		t.Errorf("panic count = %v", c)
	}
}
