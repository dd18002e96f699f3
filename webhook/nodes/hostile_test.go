package nodes

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// TestHandlerIssueNumbers: the kubelet reports amounts that once made the webhook store a
// negative capacity (which the apiserver then refuses on every status write of the node) or cpu 0.
// The handler allows the write, leaves that resource as reported with a warning, and still
// overcommits the other resource.
func TestHandlerIssueNumbers(t *testing.T) {
	tests := []struct {
		name            string
		alloc, capacity map[corev1.ResourceName]string
		kept, other     corev1.ResourceName
		wantOther       string
	}{
		{name: "cpu 4e15 of 8e15", alloc: map[corev1.ResourceName]string{"cpu": "4e15"}, capacity: map[corev1.ResourceName]string{"cpu": "8e15"},
			kept: "cpu", other: "memory", wantOther: "23040Mi"},
		{name: "memory 6Ei of 7Ei", alloc: map[corev1.ResourceName]string{"memory": "6Ei"}, capacity: map[corev1.ResourceName]string{"memory": "7Ei"},
			kept: "memory", other: "cpu", wantOther: "5850m"},
		{name: "cpu 10P", alloc: map[corev1.ResourceName]string{"cpu": "10P"}, capacity: map[corev1.ResourceName]string{"cpu": "10P"},
			kept: "cpu", other: "memory", wantOther: "23040Mi"},
		{name: "cpu 9223372036854775807", alloc: map[corev1.ResourceName]string{"cpu": "9223372036854775807"},
			capacity: map[corev1.ResourceName]string{"cpu": "9223372036854775807"}, kept: "cpu", other: "memory", wantOther: "23040Mi"},
		{name: "cpu 1e400", alloc: map[corev1.ResourceName]string{"cpu": "1e400"}, capacity: map[corev1.ResourceName]string{"cpu": "1e400"},
			kept: "cpu", other: "memory", wantOther: "23040Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			in := testNode(optIn, map[string]string{names.MemoryRatioAnnotation: "1.5"})
			for k, v := range tt.alloc {
				in.Status.Allocatable[k] = resource.MustParse(v)
			}
			for k, v := range tt.capacity {
				in.Status.Capacity[k] = resource.MustParse(v)
			}
			resp := f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
			got := apply(t, in, resp)
			for _, l := range []struct {
				name     string
				in, stor corev1.ResourceList
			}{{"allocatable", in.Status.Allocatable, got.Status.Allocatable}, {"capacity", in.Status.Capacity, got.Status.Capacity}} {
				for name, q := range l.in {
					s := l.stor[name]
					if s.Sign() < 0 {
						t.Errorf("%s/%s stored negative: %s", l.name, name, s.String())
					}
					if name != tt.other && s.Cmp(q) != 0 {
						t.Errorf("%s/%s = %s, want it as reported (%s)", l.name, name, s.String(), q.String())
					}
				}
			}
			if q := got.Status.Allocatable[tt.other]; q.String() != tt.wantOther {
				t.Errorf("%s = %s, want %s", tt.other, q.String(), tt.wantOther)
			}
			want := "is above the largest amount overcommit changes"
			if !strings.Contains(strings.Join(resp.Warnings, "\n"), want) || !strings.Contains(strings.Join(resp.Warnings, "\n"), "leaving "+string(tt.kept)+" unchanged") {
				t.Errorf("warnings %q, want one saying %q and leaving %s unchanged", resp.Warnings, want, tt.kept)
			}
		})
	}
}

// hostileValues would cost ParseQuantity minutes to hours (an exponent that makes it build a
// 10^2000000000 integer), or are far longer than any value overcommit accepts; the long ones
// stay under the webhook's request limit with the object sent twice.
var hostileValues = map[string]string{
	"exponent":    "1e-2000000000",
	"long digits": strings.Repeat("9", 300_000),
	"long runes":  strings.Repeat("é", 150_000),
}

// TestHandlerHostileAnnotations: every node annotation the webhook parses, holding a hostile
// value, is refused fast with a short warning that names it; the write is allowed and what is
// stored stays safe. The records are read because a controller's heartbeat carries our own
// output back.
func TestHandlerHostileAnnotations(t *testing.T) {
	s := policy.DefaultSettings()
	s.TargetsConfirmedAt = now.Add(-time.Minute)
	for _, tt := range fixtures.HostileAnnotations() {
		for kind, v := range hostileValues {
			t.Run(tt.Key+"/"+kind, func(t *testing.T) {
				f := newFixture(t, nil)
				f.handler.Settings = settings.Fixed(s)
				// The stored node: the kubelet's report, overcommitted by the handler itself.
				n := testNode(optIn, map[string]string{})
				n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(now)
				n = apply(t, n, f.send(t, review(t, n, admissionv1.Update, "system:node:worker-1", false)))
				if tt.Key == names.UsageTargetAnnotation {
					n.Annotations[names.PolicyAnnotation] = names.PolicyUsage
				}
				n.Annotations[tt.Key] = tt.Wrap(v)
				body := review(t, n, admissionv1.Update, "system:serviceaccount:kube-system:node-controller", false)

				resp := f.sendWithin(t, body, 5*time.Second)
				got := apply(t, n, resp)
				if q := got.Status.Allocatable[corev1.ResourceCPU]; q.String() != tt.CPU {
					t.Errorf("cpu = %s, want %s", q.String(), tt.CPU)
				}
				found := false
				for _, w := range resp.Warnings {
					found = found || strings.HasPrefix(w, names.WarningPrefix+tt.Warn)
					if len(w) > 256 {
						t.Errorf("a warning of %d bytes: %.100q...", len(w), w)
					}
				}
				if !found {
					t.Errorf("warnings %.300q, want one starting %q", resp.Warnings, names.WarningPrefix+tt.Warn)
				}
				// Nothing of the hostile value is stored anywhere but where its writer put it.
				var ops []map[string]any
				if len(resp.Patch) == 0 {
					return
				}
				if err := json.Unmarshal(resp.Patch, &ops); err != nil {
					t.Fatal(err)
				}
				for _, op := range ops {
					if s, ok := op["value"].(string); ok && strings.Contains(s, v[:8]) {
						t.Errorf("the patch copies the hostile value to %s", op["path"])
					}
				}
			})
		}
	}
}

// sendWithin is send, failing t when the review takes longer than d: on code that hands a
// hostile value to ParseQuantity the test fails instead of hanging for hours.
func (f *fixture) sendWithin(t *testing.T, body []byte, d time.Duration) *admissionv1.AdmissionResponse {
	t.Helper()
	start := time.Now()
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- reviewtest.Post(f.wh, "/mutate-node", body) }()
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-time.After(d):
		t.Fatalf("the review is still running after %s", d)
	}
	took := time.Since(start)
	t.Logf("%d-byte review answered in %s", len(body), took)
	if took > d {
		t.Errorf("the review took %s, want under %s", took, d)
	}
	return allowed(t, reviewtest.Decode(t, rec, reviewtest.UID))
}
