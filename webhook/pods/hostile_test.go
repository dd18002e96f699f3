package pods

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
)

// The limits as documented (sidecar.MaxRequested, sidecar.MaxRequestedBytes, MaxMessageBytes):
// spelt out here so that changing one is a visible decision, not a side effect.
const (
	wantMaxNames        = 32
	wantMaxMessageBytes = 2 << 10
	// maxLogLine bounds one log line of the handler: the message plus the other attributes.
	maxLogLine = wantMaxMessageBytes + 1<<10
)

// namesList is "prefix0,prefix1,..." with n names.
func namesList(prefix string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return strings.Join(parts, ",")
}

// TestHandlerDenialMessages pins the whole message of every denial that repeats what the pod's
// creator wrote: each states the limit it enforces and stays short whatever the input.
func TestHandlerDenialMessages(t *testing.T) {
	const prefix = "overcommit: pod shop/web not admitted: "
	const bad = prefix + "invalid annotation sidecar.overcommit.dev/inject: "
	const rule = " (templates are ConfigMaps: at most 253 lowercase letters, digits, '-' and '.')"
	tests := []struct {
		name   string
		pod    *corev1.Pod
		reason string
		want   string
	}{
		{name: "one name too many", pod: pod(namesList("t", wantMaxNames+1)), reason: "invalid_annotation",
			want: bad + "more than 32 template names, over the limit of 32"},
		{name: "20,000 names", pod: pod(namesList("t", 20000)), reason: "invalid_annotation",
			want: bad + "longer than 16384 bytes, the limit (at most 32 template names of at most 253 characters)"},
		{name: "one byte too long", pod: pod("logs," + strings.Repeat(" ", 16<<10-len("logs,")+1)), reason: "invalid_annotation",
			want: bad + "longer than 16384 bytes, the limit (at most 32 template names of at most 253 characters)"},
		{name: "name too long", pod: pod("logs," + strings.Repeat("a", 254)), reason: "invalid_annotation",
			want: bad + `"` + strings.Repeat("a", 61) + `…" (254 bytes) is not a template name` + rule},
		{name: "not names", pod: pod("Mesh, a_b,logs"), reason: "invalid_annotation",
			want: bad + `"Mesh", "a_b" are not template names` + rule},
		{name: "control characters are quoted", pod: pod("\x1b[31mred"), reason: "invalid_annotation",
			want: bad + `"\x1b[31mred" is not a template name` + rule},
		{name: "many bad names", pod: pod(namesList("T", 9)), reason: "invalid_annotation",
			want: bad + `"T0", "T1", "T2", "T3", "T4" and 4 more are not template names` + rule},
		{name: "many unknown names", pod: pod(namesList("u", wantMaxNames)), reason: "unknown_template",
			want: prefix + `sidecar injection failed: no such sidecar template "u0"; also no such sidecar template: "u1", "u2", "u3", "u4", "u5" and 26 more`},
		{name: "unknown and invalid", pod: pod("nope,broken,logs,gone"), reason: "unknown_template",
			want: prefix + `sidecar injection failed: no such sidecar template "nope"; also no such sidecar template: "gone"; ` +
				`invalid sidecar template: template "broken": parsing template.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "imagee"`},
		{name: "duplicates are one name", pod: pod(strings.Repeat("nope, ", 1000)), reason: "unknown_template",
			want: prefix + `sidecar injection failed: no such sidecar template "nope"`},
		{name: "huge generateName", pod: pod(namesList("u", 2), func(p *corev1.Pod) { p.Name, p.GenerateName = "", strings.Repeat("g", 1<<20) }),
			reason: "unknown_template",
			want:   "overcommit: pod shop/" + strings.Repeat("g", 250) + `…* not admitted: sidecar injection failed: no such sidecar template "u0"; also no such sidecar template: "u1"`},
		{name: "patch too large", pod: pod("logs,mesh", func(p *corev1.Pod) {
			for i := range 40000 {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i)})
			}
		}), reason: "too_large",
			want: prefix + "the injection's patch would exceed 4194304 bytes (the pod has 40001 containers)"},
		{name: "status annotation too long", pod: pod("logs", func(p *corev1.Pod) {
			p.Annotations[names.SidecarStatusAnnotation] = `{"templates":[` + strings.Repeat(`{"name":"x"},`, 30000) + `{"name":"y"}]}`
		}), reason: "invalid_pod",
			want: prefix + "annotation sidecar.overcommit.dev/status is longer than 262144 bytes, the apiserver's limit for all of a pod's annotations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var logs bytes.Buffer
			f.handler.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			resp := f.send(t, review(t, encode(t, tc.pod), "shop", false))
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed=%v result=%+v", resp.Allowed, resp.Result)
			}
			if diff := cmp.Diff(tc.want, resp.Result.Message); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if got := testutil.ToFloat64(f.handler.Metrics.denied.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("denials{%s} = %v, want 1", tc.reason, got)
			}
			checkLogLines(t, logs.Bytes())
		})
	}
}

// checkLogLines fails if a log line is longer than maxLogLine.
func checkLogLines(t *testing.T, logs []byte) {
	t.Helper()
	for line := range bytes.Lines(logs) {
		if len(line) > maxLogLine {
			t.Errorf("log line of %d bytes, want at most %d: %.200s…", len(line), maxLogLine, line)
		}
	}
}

// TestHandlerHostileAnnotationIsCheap sends the inject annotations that cost minutes before:
// each is denied within a bounded time, with a message and log lines of bounded length.
func TestHandlerHostileAnnotationIsCheap(t *testing.T) {
	tests := []struct {
		name, inject, want string
	}{
		{"3 MiB annotation", hostileAnnotation(), "longer than 16384 bytes"},
		{"20,000 names", hostileNames(20000), "longer than 16384 bytes"},
		{"3 MiB of escapes", strings.Repeat(`\u0000`, (admission.MaxRequestBytes-4<<10)/6), "longer than 16384 bytes"},
		{"33 names", hostileNames(33), "more than 32 template names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var logs bytes.Buffer
			f.handler.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			raw := encode(t, pod(""))
			// Written into the JSON as is, so the escapes case sends escapes.
			quoted, _ := json.Marshal(tc.inject)
			if strings.HasPrefix(tc.inject, `\u`) {
				quoted = []byte(`"` + tc.inject + `"`)
			}
			raw = bytes.Replace(raw, []byte(`"metadata":{`), fmt.Appendf(nil, `"metadata":{"annotations":{%q:%s},`, names.SidecarInjectAnnotation, quoted), 1)
			body := review(t, raw, "shop", false)
			if len(body) > admission.MaxRequestBytes {
				t.Fatalf("review of %d bytes exceeds what the webhook reads", len(body))
			}

			// Generous: the denial takes milliseconds; before the limits it took seconds to
			// minutes. A deadline keeps a regression from hanging the suite.
			done := make(chan *admissionv1.AdmissionResponse, 1)
			start := time.Now()
			go func() { done <- f.send(t, body) }()
			var resp *admissionv1.AdmissionResponse
			select {
			case resp = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("no answer after %v", time.Since(start))
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed=%v result=%+v", resp.Allowed, resp.Result)
			}
			if !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("message %.300q does not contain %q", resp.Result.Message, tc.want)
			}
			if n := len(resp.Result.Message); n > wantMaxMessageBytes {
				t.Errorf("message of %d bytes, want at most %d", n, wantMaxMessageBytes)
			}
			checkLogLines(t, logs.Bytes())
		})
	}
}

// countingTemplates counts lookups.
type countingTemplates struct {
	Templates
	lookups int
}

func (c *countingTemplates) Get(name string) (*sidecar.Template, error) {
	c.lookups++
	return c.Templates.Get(name)
}

// TestHandlerHonorsContext: a review the apiserver has abandoned (its context is done) looks
// nothing up and injects nothing.
func TestHandlerHonorsContext(t *testing.T) {
	f := newFixture(t)
	store := &countingTemplates{Templates: f.store}
	f.handler.Templates = store
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(review(t, encode(t, pod("logs,mesh")), "shop", false), &rev); err != nil {
		t.Fatal(err)
	}
	req := &admission.Request{UID: rev.Request.UID, Kind: rev.Request.Kind, Resource: rev.Request.Resource,
		Namespace: rev.Request.Namespace, Operation: rev.Request.Operation, Object: rev.Request.Object.Raw}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	resp := f.handler.Handle(ctx, req)
	if resp.Patch != nil || store.lookups != 0 {
		t.Errorf("abandoned review: patch %s after %d lookups", resp.Patch, store.lookups)
	}
	if got := testutil.ToFloat64(f.handler.Metrics.denied.WithLabelValues("abandoned")); got != 1 {
		t.Errorf("denials{abandoned} = %v, want 1", got)
	}

	// The same review, not abandoned, is injected.
	resp = f.handler.Handle(t.Context(), req)
	if resp.Patch == nil || store.lookups != 2 {
		t.Errorf("live review: patch %s after %d lookups, want a patch after 2", resp.Patch, store.lookups)
	}
}

// TestHandlerClipsUnexpectedRequests: a caller that is not the apiserver can put anything in the
// review's fields; what the handler repeats of them is clipped.
func TestHandlerClipsUnexpectedRequests(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.handler.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	huge := strings.Repeat("K", 1<<20)
	req := &admission.Request{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: huge}, Operation: admissionv1.Operation(huge)}
	resp := f.handler.Handle(t.Context(), req)
	if !resp.Allowed || len(resp.Warnings) != 1 {
		t.Fatalf("allowed=%v warnings=%d", resp.Allowed, len(resp.Warnings))
	}
	if n := len(resp.Warnings[0]); n > wantMaxMessageBytes {
		t.Errorf("warning of %d bytes, want at most %d", n, wantMaxMessageBytes)
	}
	checkLogLines(t, logs.Bytes())
}
