package pods

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/internal/golden"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/admission/reviewtest"
	"github.com/overcommit-dev/overcommit/webhook/templates"
)

// TestMain fails the run when a golden file under testdata is compared by no test.
func TestMain(m *testing.M) { os.Exit(golden.Run(m, "testdata/*.golden.yaml")) }

const ownNamespace = names.Namespace

// fakeTemplates serves a set of templates like the informer's store, which may not be ready.
type fakeTemplates struct {
	*sidecar.Set
	ready bool
}

// loadTemplates serves the templates in testdata/templates, parsed like the informer parses them.
func loadTemplates(t testing.TB) *fakeTemplates {
	t.Helper()
	f := &fakeTemplates{Set: sidecar.NewSet(""), ready: true}
	files, err := filepath.Glob("testdata/templates/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		tmpl, err := sidecar.Parse(name, data)
		f.Put(name, tmpl, err)
	}
	return f
}

func (f *fakeTemplates) Get(name string) (*sidecar.Template, error) {
	if !f.ready {
		return nil, templates.ErrNotReady
	}
	return f.Set.Get(name)
}

type fixture struct {
	wh      *admission.Webhook
	handler *Handler
	store   *fakeTemplates
	wire    *admission.Metrics
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := loadTemplates(t)
	h := &Handler{Templates: store, Namespace: ownNamespace, Metrics: NewMetrics(reg), Log: log}
	wire := admission.NewMetrics(reg)
	return &fixture{handler: h, store: store, wire: wire, wh: &admission.Webhook{Name: "pod", Handler: h, Metrics: wire, Log: log}}
}

// review wraps a pod as the apiserver sends it on CREATE.
func review(t testing.TB, raw []byte, namespace string, dryRun bool) []byte {
	t.Helper()
	return reviewtest.Encode(t, admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
		DryRun:    ptr.To(dryRun),
	})
}

func (f *fixture) send(t testing.TB, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	return reviewtest.Send(t, f.wh, "/mutate-pod", body)
}

// apply applies the response's patch to the raw pod exactly as sent, as the apiserver does.
func apply(t testing.TB, raw []byte, resp *admissionv1.AdmissionResponse) []byte {
	t.Helper()
	return reviewtest.Apply(t, raw, resp)
}

// compareGolden compares the patched pod, as YAML, with testdata/<name>.golden.yaml.
func compareGolden(t testing.TB, name string, podJSON []byte) {
	t.Helper()
	got, err := yaml.JSONToYAML(podJSON)
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", name+".golden.yaml"), got)
}

// pod builds the smallest pod a user writes: one container, no volumes, no init containers.
func pod(inject string, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	if inject != "" {
		p.Annotations = map[string]string{names.SidecarInjectAnnotation: inject}
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func encode(t testing.TB, p *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHandlerInjects(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		ns   string
	}{
		{name: "classic-minimal", pod: pod("logs")},
		{name: "native-minimal", pod: pod("mesh")},
		{name: "two-templates", pod: pod("mesh, logs", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example.com/app:1", Args: []string{"migrate"}}}
			p.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}}
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry-example-com"}}
		})},
		{name: "merge-env-and-mounts", pod: pod("logs", func(p *corev1.Pod) {
			p.Labels = map[string]string{"app": "web"}
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_FORMAT", Value: "text"}, {Name: "PORT", Value: "8080"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "worker", Image: "example.com/worker:1",
				VolumeMounts: []corev1.VolumeMount{{Name: "app-logs", MountPath: "/var/log/app"}}})
			p.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		})},
		// A Deployment's pod: no name, no namespace in the object, managedFields set by the
		// ReplicaSet controller. The patch must apply to it as sent.
		{name: "deployment-pod", ns: "shop", pod: pod("mesh", func(p *corev1.Pod) {
			p.Name, p.Namespace, p.GenerateName = "", "", "web-7d4b9c-"
			p.Labels = map[string]string{"app": "web", "pod-template-hash": "7d4b9c"}
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c", UID: "u1", Controller: ptr.To(true)}}
			p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
				APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:generateName":{}}}`)}}
		})},
		{name: "host-network-partial", pod: pod("mesh,logs", func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ns := tc.ns
			if ns == "" {
				ns = tc.pod.Namespace
			}
			raw := encode(t, tc.pod)
			resp := f.send(t, review(t, raw, ns, false))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if len(resp.Patch) == 0 {
				t.Fatal("no patch")
			}
			if strings.Contains(string(resp.Patch), "managedFields") {
				t.Errorf("patch touches managedFields: %s", resp.Patch)
			}
			out := apply(t, raw, resp)
			compareGolden(t, tc.name, out)

			// The apiserver calls again after later webhooks (reinvocationPolicy IfNeeded): the
			// injected pod must come back unchanged.
			again := f.send(t, review(t, out, ns, false))
			if !again.Allowed || len(again.Patch) != 0 {
				t.Errorf("second pass: allowed=%v patch=%s result=%+v", again.Allowed, again.Patch, again.Result)
			}
		})
	}
}

func TestHandlerMetricsAndWarnings(t *testing.T) {
	f := newFixture(t)
	resp := f.send(t, review(t, encode(t, pod("mesh,logs", func(p *corev1.Pod) { p.Spec.HostNetwork = true })), "shop", false))
	want := []string{`overcommit: sidecar template "mesh" not injected: the pod uses hostNetwork and the template sets skipHostNetwork`}
	if diff := cmp.Diff(want, resp.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(f.handler.Metrics.injected.WithLabelValues("logs")); got != 1 {
		t.Errorf("injections{logs} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.handler.Metrics.skipped.WithLabelValues("mesh")); got != 1 {
		t.Errorf("skips{mesh} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.wire.RequestCount("pod", admission.OutcomePatched)); got != 1 {
		t.Errorf("requests{patched} = %v, want 1", got)
	}
}

func TestHandlerDryRun(t *testing.T) {
	f := newFixture(t)
	raw := encode(t, pod("logs"))
	resp := f.send(t, review(t, raw, "shop", true))
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("dry run: allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
	// A dry run gets the same pod (so kubectl --dry-run=server shows the truth) but counts nothing.
	compareGolden(t, "classic-minimal", apply(t, raw, resp))
	if got := testutil.ToFloat64(f.handler.Metrics.injected.WithLabelValues("logs")); got != 0 {
		t.Errorf("dry run counted as an injection: %v", got)
	}
}

func TestHandlerLeavesAlone(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		ns   string
	}{
		{name: "no annotation", pod: pod("")},
		{name: "blank annotation", pod: pod(" , ")},
		{name: "kube-system", pod: pod("logs"), ns: "kube-system"},
		{name: "kube-public", pod: pod("logs"), ns: "kube-public"},
		{name: "kube-node-lease", pod: pod("logs"), ns: "kube-node-lease"},
		{name: "own namespace", pod: pod("logs"), ns: ownNamespace},
		{name: "host network, only a skipping template", pod: pod("mesh", func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
		// Even a broken template is not looked up where nothing is injected.
		{name: "kube-system asks for unknown", pod: pod("nope"), ns: "kube-system"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ns := tc.ns
			if ns == "" {
				ns = "shop"
			}
			resp := f.send(t, review(t, encode(t, tc.pod), ns, false))
			if !resp.Allowed || len(resp.Patch) != 0 {
				t.Errorf("allowed=%v patch=%s result=%+v", resp.Allowed, resp.Patch, resp.Result)
			}
		})
	}
}

func TestHandlerDenies(t *testing.T) {
	tests := []struct {
		name   string
		pod    *corev1.Pod
		ready  bool
		nilSrc bool
		reason string
		want   []string
	}{
		{name: "unknown template", pod: pod("logs,nope"), ready: true, reason: "unknown_template",
			want: []string{`overcommit: pod shop/web not admitted: sidecar injection failed: no such sidecar template "nope"`}},
		{name: "invalid template", pod: pod("broken"), ready: true, reason: "invalid_template",
			want: []string{`invalid sidecar template: template "broken": parsing template.yaml`, `unknown field "imagee"`}},
		{name: "container clash", pod: pod("logs", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "log-shipper" }), ready: true, reason: "conflict",
			want: []string{`template "logs": container "log-shipper" clashes with the pod's own container "log-shipper" (containers)`}},
		{name: "volume clash", pod: pod("logs", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "app-logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
		}), ready: true, reason: "conflict", want: []string{`template "logs": volume "app-logs" clashes with the pod's own volume "app-logs"`}},
		{name: "several problems in one message", pod: pod("nope,logs,mesh", func(p *corev1.Pod) { p.GenerateName, p.Name = "web-", "" }), ready: true, reason: "unknown_template",
			want: []string{`pod shop/web-* not admitted`, `no such sidecar template "nope"`}},
		{name: "templates not loaded", pod: pod("logs"), reason: "not_ready", want: []string{"sidecar templates are not loaded yet"}},
		{name: "no cluster connection", pod: pod("logs"), nilSrc: true, reason: "not_ready", want: []string{"no cluster connection"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.store.ready = tc.ready
			if tc.nilSrc {
				f.handler.Templates = nil
			}
			resp := f.send(t, review(t, encode(t, tc.pod), "shop", false))
			if resp.Allowed || len(resp.Patch) != 0 || resp.Result == nil {
				t.Fatalf("allowed=%v patch=%s result=%+v", resp.Allowed, resp.Patch, resp.Result)
			}
			for _, w := range tc.want {
				if !strings.Contains(resp.Result.Message, w) {
					t.Errorf("message %q\ndoes not contain %q", resp.Result.Message, w)
				}
			}
			if strings.Contains(resp.Result.Message, "\n") {
				t.Errorf("message spans lines: %q", resp.Result.Message)
			}
			if got := testutil.ToFloat64(f.handler.Metrics.denied.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("denials{%s} = %v, want 1", tc.reason, got)
			}
		})
	}
}

func TestHandlerUnexpectedRequests(t *testing.T) {
	f := newFixture(t)
	// A Node sent to the pod path (wrong rules) is let through untouched, with a warning.
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(review(t, encode(t, pod("logs")), "shop", false), &rev); err != nil {
		t.Fatal(err)
	}
	rev.Request.Kind.Kind = "Node"
	body, _ := json.Marshal(rev)
	resp := f.send(t, body)
	if !resp.Allowed || len(resp.Patch) != 0 || len(resp.Warnings) != 1 {
		t.Errorf("wrong kind: allowed=%v patch=%s warnings=%q", resp.Allowed, resp.Patch, resp.Warnings)
	}
	// An object that is not a pod at all is denied, not injected into by guesswork.
	resp = f.send(t, review(t, []byte(`{"metadata":{"annotations":{"sidecar.overcommit.dev/inject":"logs"}},"spec":{"containers":"app"}}`), "shop", false))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "cannot decode the pod") {
		t.Errorf("undecodable pod: allowed=%v result=%+v", resp.Allowed, resp.Result)
	}
}

func TestHandlerPanicDenies(t *testing.T) {
	f := newFixture(t)
	f.handler.Templates = panicking{}
	resp := f.send(t, review(t, encode(t, pod("logs")), "shop", false))
	if resp.Allowed {
		t.Fatal("a panic admitted the pod without its sidecar")
	}
	if got := testutil.ToFloat64(f.wire.RequestCount("pod", admission.OutcomePanic)); got != 1 {
		t.Errorf("requests{panic} = %v", got)
	}
}

type panicking struct{}

func (panicking) Get(string) (*sidecar.Template, error) { panic(errors.New("boom")) }
