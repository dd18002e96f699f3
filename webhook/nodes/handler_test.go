package nodes

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	wh      *admission.Webhook
	handler *Handler
	wire    *admission.Metrics
}

func newFixture(t testing.TB, src UsageSource) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{Settings: settings.Fixed(policy.DefaultSettings()), Usage: src, Metrics: NewMetrics(reg), Log: log, Now: func() time.Time { return now }}
	wire := admission.NewMetrics(reg)
	return &fixture{handler: h, wire: wire, wh: &admission.Webhook{Name: "node", Handler: h, Metrics: wire, Log: log, OnPanic: h.OnPanic}}
}

func testNode(labels, ann map[string]string) *corev1.Node {
	return &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Labels: labels, Annotations: ann},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("3900m"), corev1.ResourceMemory: resource.MustParse("15Gi"),
				corev1.ResourcePods: resource.MustParse("110"), "example.com/gpu": resource.MustParse("2"),
			},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
				corev1.ResourcePods: resource.MustParse("110"), "example.com/gpu": resource.MustParse("2"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

var optIn = map[string]string{names.EnabledLabel: "true"}

// review wraps a node in a nodes/status review as the apiserver sends it.
func review(t testing.TB, obj runtime.Object, op admissionv1.Operation, user string, dryRun bool) []byte {
	t.Helper()
	raw := reviewtest.Object(t, obj)
	return reviewtest.Encode(t, admissionv1.AdmissionRequest{
		Kind:        metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
		Resource:    metav1.GroupVersionResource{Version: "v1", Resource: "nodes"},
		SubResource: "status",
		Name:        "worker-1",
		Operation:   op,
		UserInfo:    authenticationv1.UserInfo{Username: user},
		Object:      raw,
		OldObject:   raw,
		DryRun:      ptr.To(dryRun),
	})
}

// send posts a review and returns the decoded response, which must allow the write.
func (f *fixture) send(t testing.TB, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	return allowed(t, reviewtest.Send(t, f.wh, "/mutate-node", body))
}

// allowed fails t unless resp allows the node write: the node webhook never denies one.
func allowed(t testing.TB, resp *admissionv1.AdmissionResponse) *admissionv1.AdmissionResponse {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("node write denied: %+v", resp.Result)
	}
	return resp
}

// apply applies a response's patch to the node, as the apiserver does, and returns the result.
func apply(t testing.TB, n *corev1.Node, resp *admissionv1.AdmissionResponse) *corev1.Node {
	t.Helper()
	var out corev1.Node
	if err := json.Unmarshal(reviewtest.Apply(t, reviewtest.Object(t, n).Raw, resp), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func qty(l corev1.ResourceList, name corev1.ResourceName) string {
	q := l[name]
	return q.String()
}

func TestHandlerStaticRatio(t *testing.T) {
	f := newFixture(t, nil)
	in := testNode(optIn, map[string]string{names.CPURatioAnnotation: "2"})
	resp := f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
	got := apply(t, in, resp)

	want := map[string]string{"alloc cpu": "7800m", "cap cpu": "7900m", "alloc memory": "15Gi", "cap memory": "16Gi",
		"alloc pods": "110", "alloc gpu": "2", "cap gpu": "2"}
	gotVals := map[string]string{
		"alloc cpu": qty(got.Status.Allocatable, "cpu"), "cap cpu": qty(got.Status.Capacity, "cpu"),
		"alloc memory": qty(got.Status.Allocatable, "memory"), "cap memory": qty(got.Status.Capacity, "memory"),
		"alloc pods": qty(got.Status.Allocatable, "pods"), "alloc gpu": qty(got.Status.Allocatable, "example.com/gpu"),
		"cap gpu": qty(got.Status.Capacity, "example.com/gpu"),
	}
	if diff := cmp.Diff(want, gotVals); diff != "" {
		t.Errorf("stored node (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`{"allocatable":{"cpu":"3900m","memory":"15Gi"},"capacity":{"cpu":"4","memory":"16Gi"}}`, got.Annotations[names.RawAnnotation]); diff != "" {
		t.Errorf("raw annotation (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Annotations[names.AppliedAnnotation], `"cpu":"7800m"`) {
		t.Errorf("applied annotation = %s", got.Annotations[names.AppliedAnnotation])
	}
	// Only the four resource values and the two annotations are touched.
	var ops []map[string]any
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, op := range ops {
		paths = append(paths, op["op"].(string)+" "+op["path"].(string))
	}
	wantPaths := []string{"add /status/allocatable/cpu", "add /status/capacity/cpu",
		"add /metadata/annotations/overcommit.dev~1raw", "add /metadata/annotations/overcommit.dev~1applied"}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("patch paths (-want +got):\n%s", diff)
	}
	if c := testutil.ToFloat64(f.handler.Metrics.patched.WithLabelValues("static")); c != 1 {
		t.Errorf("patched metric = %v, want 1", c)
	}
}

func TestHandlerNoAnnotationsYet(t *testing.T) {
	f := newFixture(t, nil)
	in := testNode(optIn, nil) // no annotations map at all: the patch must create it
	got := apply(t, in, f.send(t, review(t, in, admissionv1.Create, "system:node:worker-1", false)))
	if got.Annotations[names.RawAnnotation] == "" || qty(got.Status.Allocatable, "cpu") != "5850m" {
		t.Errorf("annotations %v, cpu %s", got.Annotations, qty(got.Status.Allocatable, "cpu"))
	}
}

// TestHandlerFeedback feeds the handler's own output back 100 times, from writers that do not
// carry allocatable: it must stay at 7800m. A kubelet write with a new raw allocatable then
// recomputes from it.
func TestHandlerFeedback(t *testing.T) {
	f := newFixture(t, nil)
	n := testNode(optIn, map[string]string{names.CPURatioAnnotation: "2"})
	n = apply(t, n, f.send(t, review(t, n, admissionv1.Update, "system:node:worker-1", false)))
	writers := []string{"system:serviceaccount:kube-system:node-controller", "kwok-controller", "kubernetes-admin"}
	for i := 0; i < 100; i++ {
		n = apply(t, n, f.send(t, review(t, n, admissionv1.Update, writers[i%len(writers)], false)))
		if got := qty(n.Status.Allocatable, "cpu"); got != "7800m" {
			t.Fatalf("write %d: cpu = %s, want 7800m", i, got)
		}
		if got := qty(n.Status.Capacity, "cpu"); got != "7900m" {
			t.Fatalf("write %d: capacity cpu = %s, want 7900m", i, got)
		}
	}

	// The kubelet resizes: it reports a new raw allocatable, which is the new base.
	n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("7900m")
	n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("8")
	n = apply(t, n, f.send(t, review(t, n, admissionv1.Update, "system:node:worker-1", false)))
	if got := qty(n.Status.Allocatable, "cpu"); got != "15800m" {
		t.Errorf("after kubelet resize: cpu = %s, want 15800m", got)
	}
	if !strings.Contains(n.Annotations[names.RawAnnotation], `"cpu":"7900m"`) {
		t.Errorf("raw annotation not updated: %s", n.Annotations[names.RawAnnotation])
	}
}

func TestHandlerLeavesOthersAlone(t *testing.T) {
	tests := []struct {
		name      string
		node      *corev1.Node
		wantWarn  string
		wantPatch bool
	}{
		{name: "not opted in", node: testNode(nil, map[string]string{names.CPURatioAnnotation: "2"})},
		{name: "label not true", node: testNode(map[string]string{names.EnabledLabel: "yes"}, nil)},
		{name: "bad ratio", node: testNode(optIn, map[string]string{names.CPURatioAnnotation: "abc"}),
			wantWarn: `overcommit: invalid overcommit.dev/cpu-ratio "abc"`, wantPatch: true /* records raw/applied */},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			resp := f.send(t, review(t, tt.node, admissionv1.Update, "system:node:worker-1", false))
			got := apply(t, tt.node, resp)
			if (len(resp.Patch) > 0) != tt.wantPatch {
				t.Errorf("patch = %s, want patch %v", resp.Patch, tt.wantPatch)
			}
			if diff := cmp.Diff(tt.node.Status.Allocatable, got.Status.Allocatable); diff != "" {
				t.Errorf("allocatable changed (-want +got):\n%s", diff)
			}
			if tt.wantWarn != "" && (len(resp.Warnings) == 0 || !strings.HasPrefix(resp.Warnings[0], tt.wantWarn)) {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tt.wantWarn)
			}
		})
	}
}

// TestHandlerSettings: the settings ConfigMap decides as it does in policy mode. Valid: its
// settings; invalid: the defaults, with a warning; missing (or not loaded yet): the node is left
// unchanged, with a warning.
func TestHandlerSettings(t *testing.T) {
	custom := policy.DefaultSettings()
	custom.CPU.Default = policy.MustParseRatio("3")
	invalid := custom.Data()
	invalid[policy.KeyMaxCPURatio] = "2" // below the default: the whole ConfigMap is invalid
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ResourceVersion: "7"}, Data: data}
	}
	tests := []struct {
		name      string
		snapshot  *settings.Snapshot // nil: nothing stored
		wantCPU   string
		wantWarns []string
		wantState string
	}{
		{name: "valid", snapshot: settings.Parse("ns", "s", cm(custom.Data())), wantCPU: "11700m"},
		{name: "invalid", snapshot: settings.Parse("ns", "s", cm(invalid)), wantCPU: "5850m", wantState: "invalid",
			wantWarns: []string{"overcommit: settings ConfigMap ns/s is invalid (default cpu ratio 3 must be between 1 and the max 2); using the defaults"}},
		{name: "missing", snapshot: settings.Parse("ns", "s", nil), wantCPU: "3900m", wantState: "missing",
			wantWarns: []string{"overcommit: settings ConfigMap ns/s not found; node left unchanged"}},
		{name: "nothing stored", wantCPU: "3900m", wantState: "missing",
			wantWarns: []string{"overcommit: no settings source; node left unchanged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.handler.Settings.Store(tt.snapshot)
			in := testNode(optIn, nil)
			resp := f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
			got := apply(t, in, resp)
			if c := qty(got.Status.Allocatable, "cpu"); c != tt.wantCPU {
				t.Errorf("cpu = %s, want %s", c, tt.wantCPU)
			}
			if diff := cmp.Diff(tt.wantWarns, resp.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if tt.wantState == "missing" && len(resp.Patch) != 0 {
				t.Errorf("patch %s, want none", resp.Patch)
			}
			for _, state := range []string{"missing", "invalid"} {
				want := 0.0
				if state == tt.wantState {
					want = 1
				}
				if c := testutil.ToFloat64(f.handler.Metrics.settings.WithLabelValues(state)); c != want {
					t.Errorf("settings problems{state=%s} = %v, want %v", state, c, want)
				}
			}
		})
	}
	// Nodes that are not opted in get no warning about settings.
	f := newFixture(t, nil)
	f.handler.Settings = nil
	if resp := f.send(t, review(t, testNode(nil, nil), admissionv1.Update, "system:node:worker-1", false)); len(resp.Warnings) != 0 {
		t.Errorf("warnings for a node that is not opted in: %q", resp.Warnings)
	}
}

func TestHandlerDryRunStillPatches(t *testing.T) {
	f := newFixture(t, nil)
	in := testNode(optIn, map[string]string{names.CPURatioAnnotation: "2"})
	got := apply(t, in, f.send(t, review(t, in, admissionv1.Update, "kubernetes-admin", true)))
	if qty(got.Status.Allocatable, "cpu") != "7800m" {
		t.Errorf("dry run: cpu = %s, want 7800m (preview --server relies on it)", qty(got.Status.Allocatable, "cpu"))
	}
	if c := testutil.ToFloat64(f.handler.Metrics.patched.WithLabelValues("static")); c != 0 {
		t.Errorf("dry run counted as a patched node")
	}
}

type fakeUsage struct {
	sample *policy.UsageSample
	why    string
	// requests nil: the pod cache cannot say.
	requests             corev1.ResourceList
	calls, requestsCalls int
}

func (f *fakeUsage) Sample(string) (*policy.UsageSample, string) { f.calls++; return f.sample, f.why }

func (f *fakeUsage) Requests(string) (corev1.ResourceList, string) {
	f.requestsCalls++
	if f.requests == nil {
		return nil, "pod cache not synced yet"
	}
	return f.requests, ""
}

func TestHandlerUsagePolicy(t *testing.T) {
	ann := map[string]string{names.PolicyAnnotation: "usage", names.CPURatioAnnotation: "3"}
	tests := []struct {
		name     string
		src      UsageSource
		wantCPU  string
		wantWarn string
	}{
		{name: "reclaims", src: &fakeUsage{sample: &policy.UsageSample{
			Requests:  corev1.ResourceList{"cpu": resource.MustParse("8"), "memory": resource.MustParse("1Gi")},
			Usage:     corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("1Gi")},
			Timestamp: now.Add(-time.Minute)}},
			wantCPU: "9500m"},
		{name: "cache not ready", src: &fakeUsage{why: "pod cache not synced yet"},
			wantCPU: "3900m", wantWarn: "overcommit: usage policy: pod cache not synced yet; no overcommit"},
		{name: "no cluster", src: nil,
			wantCPU: "3900m", wantWarn: "overcommit: usage policy: the webhook has no cluster connection for usage data; no overcommit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.src)
			in := testNode(optIn, ann)
			resp := f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
			got := apply(t, in, resp)
			if c := qty(got.Status.Allocatable, "cpu"); c != tt.wantCPU {
				t.Errorf("cpu = %s, want %s", c, tt.wantCPU)
			}
			if tt.wantWarn != "" {
				if len(resp.Warnings) == 0 || resp.Warnings[0] != tt.wantWarn {
					t.Errorf("warnings = %q, want %q", resp.Warnings, tt.wantWarn)
				}
				if c := testutil.ToFloat64(f.handler.Metrics.fallbacks); c != 1 {
					t.Errorf("fallback metric = %v, want 1", c)
				}
			}
		})
	}
}

func TestHandlerStaticNeverReadsUsage(t *testing.T) {
	src := &fakeUsage{}
	f := newFixture(t, src)
	in := testNode(optIn, nil)
	f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
	if src.calls != 0 || src.requestsCalls != 0 {
		t.Errorf("static policy without pressure consulted the usage caches: %d samples, %d requests", src.calls, src.requestsCalls)
	}
}

// TestUsageInputs: what the handler gives the policy from the caches. Requests are filled for a
// node under pressure (or cooling down from it) whatever its policy, and for the usage policy;
// nil when nobody can say (no cluster, cache not synced), so the policy turns to the published
// record, then to raw.
func TestUsageInputs(t *testing.T) {
	requested := corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("2Gi")}
	sample := &policy.UsageSample{Requests: requested, Usage: requested, Timestamp: now}
	memory := policy.Condition{True: true, Since: now.Add(-time.Minute)}
	cleared := policy.Condition{Since: now.Add(-time.Minute)}
	usage := map[string]string{names.PolicyAnnotation: "usage"}
	tests := []struct {
		name         string
		node         policy.Node
		src          *fakeUsage // nil: no cluster
		wantRequests string     // "" is nil
		wantSample   bool
	}{
		{name: "static, no pressure", node: policy.Node{Name: "n"}, src: &fakeUsage{requests: requested}},
		{name: "static, memory pressure", node: policy.Node{Name: "n", MemoryPressure: memory}, src: &fakeUsage{requests: requested},
			wantRequests: "cpu=1000m,memory=2147483648"},
		{name: "static, pid pressure", node: policy.Node{Name: "n", PIDPressure: memory}, src: &fakeUsage{requests: requested},
			wantRequests: "cpu=1000m,memory=2147483648"},
		{name: "static, pressure cleared a minute ago", node: policy.Node{Name: "n", MemoryPressure: cleared, Heartbeat: now}, src: &fakeUsage{requests: requested},
			wantRequests: "cpu=1000m,memory=2147483648"},
		{name: "static, pressure cleared long ago", node: policy.Node{Name: "n", MemoryPressure: policy.Condition{Since: now.Add(-time.Hour)}, Heartbeat: now},
			src: &fakeUsage{requests: requested}},
		{name: "static, memory pressure, no source", node: policy.Node{Name: "n", MemoryPressure: memory}},
		{name: "static, memory pressure, not synced", node: policy.Node{Name: "n", MemoryPressure: memory}, src: &fakeUsage{}},
		{name: "usage: from the sample", node: policy.Node{Name: "n", Annotations: usage}, src: &fakeUsage{sample: sample},
			wantRequests: "cpu=1000m,memory=2147483648", wantSample: true},
		{name: "usage, no sample: from the cache", node: policy.Node{Name: "n", Annotations: usage}, src: &fakeUsage{why: "metrics.k8s.io unavailable", requests: requested},
			wantRequests: "cpu=1000m,memory=2147483648"},
		{name: "usage, no source", node: policy.Node{Name: "n", Annotations: usage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{}
			if tt.src != nil {
				h.Usage = tt.src
			}
			in := policy.Input{Node: tt.node, Now: now}
			h.usageInputs(&in)
			var got string
			if in.Requests != nil {
				got = policy.FormatRequests(in.Requests)
			}
			if diff := cmp.Diff(tt.wantRequests, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if (in.Usage != nil) != tt.wantSample {
				t.Errorf("sample = %+v, want one: %v", in.Usage, tt.wantSample)
			}
		})
	}
}

// TestHandlerPressureRequests: a node reporting MemoryPressure has its memory held at
// max(raw, min(computed, R)), R from the pod cache, whatever its policy; without the cache's
// requests (no cluster, not synced) and without a published record, at raw. The usage policy
// takes R from its sample, with no second cache read.
func TestHandlerPressureRequests(t *testing.T) {
	pressure := func(n *corev1.Node) *corev1.Node {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))})
		return n
	}
	// Static memory x1.5 of 15Gi computes 22.5Gi; the pods request 18Gi.
	static := map[string]string{names.MemoryRatioAnnotation: "1.5"}
	usage := map[string]string{names.MemoryRatioAnnotation: "1.5", names.PolicyAnnotation: "usage"}
	requested := corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("18Gi")}
	unknown := "overcommit: pressure guard: the pods' requests are unknown (no overcommit.dev/requests); holding at the raw allocatable"
	tests := []struct {
		name              string
		node              *corev1.Node
		src               *fakeUsage // nil: no cluster
		wantMemory        string
		wantRequestsCalls int
		wantWarning       string
	}{
		{name: "pressure: held at the requests", node: pressure(testNode(optIn, static)), src: &fakeUsage{requests: requested},
			wantMemory: "18Gi", wantRequestsCalls: 1},
		{name: "pressure, no cluster: raw", node: pressure(testNode(optIn, static)),
			wantMemory: "15Gi", wantWarning: unknown},
		{name: "pressure, requests unknown: raw", node: pressure(testNode(optIn, static)), src: &fakeUsage{},
			wantMemory: "15Gi", wantRequestsCalls: 1, wantWarning: unknown},
		{name: "no pressure: requests not read", node: testNode(optIn, static), src: &fakeUsage{requests: requested},
			wantMemory: "22.5Gi"},
		{name: "usage policy under pressure: requests from the sample", node: pressure(testNode(optIn, usage)),
			src: &fakeUsage{sample: &policy.UsageSample{Requests: requested, Usage: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("1Gi")},
				Timestamp: now.Add(-time.Minute)}},
			wantMemory: "18Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src UsageSource
			if tt.src != nil {
				src = tt.src
			}
			f := newFixture(t, src)
			resp := f.send(t, review(t, tt.node, admissionv1.Update, "system:node:worker-1", false))
			got := apply(t, tt.node, resp)
			want := resource.MustParse(tt.wantMemory)
			if m := got.Status.Allocatable[corev1.ResourceMemory]; m.Cmp(want) != 0 {
				t.Errorf("memory = %s, want %s", m.String(), tt.wantMemory)
			}
			if tt.src != nil && tt.src.requestsCalls != tt.wantRequestsCalls {
				t.Errorf("requests read %d times, want %d", tt.src.requestsCalls, tt.wantRequestsCalls)
			}
			if tt.wantWarning != "" && !slices.Contains(resp.Warnings, tt.wantWarning) {
				t.Errorf("warnings = %q, want %q among them", resp.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestHandlerFailsOpen(t *testing.T) {
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	tests := []struct {
		name     string
		body     func(t testing.TB) []byte
		wantWarn string
		wantKind string
	}{
		{name: "not a node", wantKind: "unexpected", wantWarn: "expected a Node, got /v1, Kind=Pod", body: func(t testing.TB) []byte {
			b := review(t, pod, admissionv1.Create, "u", false)
			return bytes.Replace(b, []byte(`"kind":{"group":"","version":"v1","kind":"Node"}`), []byte(`"kind":{"group":"","version":"v1","kind":"Pod"}`), 1)
		}},
		{name: "object is not decodable", wantKind: "decode", wantWarn: "cannot decode node", body: func(t testing.TB) []byte {
			b := review(t, testNode(optIn, nil), admissionv1.Update, "u", false)
			return bytes.Replace(b, []byte(`"cpu":"3900m"`), []byte(`"cpu":"lots"`), 1)
		}},
		{name: "no object", wantKind: "decode", wantWarn: "cannot decode node", body: func(t testing.TB) []byte {
			return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"version":"v1","kind":"Node"}}}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			resp := f.send(t, tt.body(t))
			if len(resp.Patch) != 0 {
				t.Errorf("patch = %s, want none", resp.Patch)
			}
			if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.wantWarn) {
				t.Errorf("warnings = %q, want one containing %q", resp.Warnings, tt.wantWarn)
			}
			if c := testutil.ToFloat64(f.handler.Metrics.errors.WithLabelValues(tt.wantKind)); c != 1 {
				t.Errorf("errors{kind=%s} = %v, want 1", tt.wantKind, c)
			}
			if c := testutil.ToFloat64(f.wire.RequestCount("node", admission.OutcomeError)); c != 1 {
				t.Errorf("requests{outcome=error} = %v, want 1", c)
			}
		})
	}
}

type panicky struct{}

func (panicky) Sample(string) (*policy.UsageSample, string) { panic("boom") }

func (panicky) Requests(string) (corev1.ResourceList, string) { panic("boom") }

func TestHandlerPanicAllows(t *testing.T) {
	f := newFixture(t, panicky{})
	in := testNode(optIn, map[string]string{names.PolicyAnnotation: "usage"})
	resp := f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false))
	if len(resp.Patch) != 0 || len(resp.Warnings) != 1 {
		t.Errorf("patch %s warnings %q", resp.Patch, resp.Warnings)
	}
	if c := testutil.ToFloat64(f.wire.RequestCount("node", admission.OutcomePanic)); c != 1 {
		t.Errorf("panic outcome = %v, want 1", c)
	}
}

// A node whose annotations are all someone else's: they are not decoded, but the patch must add
// ours next to them rather than replace the map.
func TestHandlerKeepsForeignAnnotations(t *testing.T) {
	f := newFixture(t, nil)
	in := testNode(optIn, map[string]string{"node.alpha.kubernetes.io/ttl": "0"})
	in.Labels["topology.kubernetes.io/zone"] = "a"
	got := apply(t, in, f.send(t, review(t, in, admissionv1.Update, "system:node:worker-1", false)))
	if got.Annotations["node.alpha.kubernetes.io/ttl"] != "0" || got.Annotations[names.RawAnnotation] == "" {
		t.Errorf("annotations = %v", got.Annotations)
	}
	if got.Labels["topology.kubernetes.io/zone"] != "a" || qty(got.Status.Allocatable, "cpu") != "5850m" {
		t.Errorf("labels %v, cpu %s", got.Labels, qty(got.Status.Allocatable, "cpu"))
	}
}
