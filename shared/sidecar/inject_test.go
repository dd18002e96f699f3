package sidecar

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

func asConflict(err error, target **ConflictError) bool { return errors.As(err, target) }

func mustParse(t testing.TB, name, y string) *Template {
	t.Helper()
	tmpl, err := Parse(name, []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func appPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "app"}},
			Containers:     []corev1.Container{{Name: "app", Image: "app", Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}}},
		},
	}
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestInjectPlacementAndStatus(t *testing.T) {
	mesh := mustParse(t, "mesh", `
native: true
initContainers: [{name: mesh-init, image: init}]
containers: [{name: mesh-proxy, image: proxy}]
env: [{name: LOG_LEVEL, value: info}, {name: MESH, value: "on"}]
`)
	logs := mustParse(t, "logs", `
containers: [{name: shipper, image: shipper}]
initContainers: [{name: logs-init, image: init}]
volumes: [{name: logs, emptyDir: {}}]
volumeMounts: [{name: logs, mountPath: /logs}]
imagePullSecrets: [{name: regcred}]
`)
	pod := appPod()
	res, err := Inject(pod, []*Template{mesh, logs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Result{Injected: []string{"mesh", "logs"}}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"mesh-init", "mesh-proxy", "logs-init", "migrate"}, containerNames(pod.Spec.InitContainers)); diff != "" {
		t.Errorf("init containers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app", "shipper"}, containerNames(pod.Spec.Containers)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if rp := pod.Spec.InitContainers[1].RestartPolicy; rp == nil || *rp != corev1.ContainerRestartPolicyAlways {
		t.Errorf("native sidecar restartPolicy = %v", rp)
	}
	if pod.Spec.InitContainers[0].RestartPolicy != nil || pod.Spec.Containers[1].RestartPolicy != nil {
		t.Error("restartPolicy set on a container that is not a native sidecar")
	}
	// The pod's own LOG_LEVEL wins; the template's new variable is added; sidecars get nothing.
	wantEnv := []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "MESH", Value: "on"}}
	if diff := cmp.Diff(wantEnv, pod.Spec.Containers[0].Env); diff != "" {
		t.Errorf("app env (-want +got):\n%s", diff)
	}
	if len(pod.Spec.Containers[1].Env) != 0 || len(pod.Spec.Containers[1].VolumeMounts) != 0 || len(pod.Spec.InitContainers[3].Env) != 0 {
		t.Error("env or mounts added to a sidecar or an init container")
	}
	want := `{"templates":[{"name":"mesh","initContainers":["mesh-init","mesh-proxy"]},{"name":"logs","containers":["shipper"],"initContainers":["logs-init"],"volumes":["logs"]}]}`
	if diff := cmp.Diff(want, pod.Annotations[names.SidecarStatusAnnotation]); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// A second pass (reinvocation) changes nothing.
	again := pod.DeepCopy()
	res, err = Inject(again, []*Template{mesh, logs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Result{Present: []string{"mesh", "logs"}}, res); diff != "" {
		t.Errorf("second pass result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod, again); diff != "" {
		t.Errorf("second pass changed the pod (-first +second):\n%s", diff)
	}

	// A new template on a later pass goes after the injected init containers, before the pod's.
	tz := mustParse(t, "tz", "initContainers: [{name: tz-init, image: tz}]\nenv: [{name: TZ, value: UTC}]")
	if _, err := Inject(again, []*Template{mesh, logs, tz}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mesh-init", "mesh-proxy", "logs-init", "tz-init", "migrate"}, containerNames(again.Spec.InitContainers)); diff != "" {
		t.Errorf("init containers after a later pass (-want +got):\n%s", diff)
	}
	// The shipper sidecar injected earlier is not one of the pod's own containers.
	if len(again.Spec.Containers[1].Env) != 0 {
		t.Errorf("env added to an earlier sidecar: %v", again.Spec.Containers[1].Env)
	}
}

func TestInjectConflicts(t *testing.T) {
	proxy := mustParse(t, "proxy", "containers: [{name: proxy, image: p}]\nvolumes: [{name: certs, secret: {secretName: certs}}]")
	proxy2 := mustParse(t, "proxy2", "containers: [{name: proxy, image: p2}]")
	migrate := mustParse(t, "dbinit", "initContainers: [{name: migrate, image: m}]")
	mount := mustParse(t, "mount", "volumeMounts: [{name: cache, mountPath: /data}]")
	sameVol := mustParse(t, "same", "volumes: [{name: certs, secret: {secretName: certs}}]\ncontainers: [{name: s, image: s}]")
	otherVol := mustParse(t, "othervol", "volumes: [{name: certs, emptyDir: {}}]\ncontainers: [{name: o, image: o}]")

	tests := []struct {
		name      string
		pod       func(*corev1.Pod)
		templates []*Template
		want      []string
	}{
		{name: "pod's own container", pod: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "proxy", Image: "mine"})
		},
			templates: []*Template{proxy}, want: []string{`template "proxy": container "proxy" clashes with the pod's own container "proxy" (containers)`}},
		{name: "pod's own init container", templates: []*Template{migrate},
			want: []string{`template "dbinit": container "migrate" clashes with the pod's own container "migrate" (initContainers)`}},
		{name: "two templates, one name", templates: []*Template{proxy, proxy2},
			want: []string{`template "proxy2": container "proxy" is also injected by template "proxy"`}},
		{name: "pod's own volume", pod: func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "certs"}} },
			templates: []*Template{proxy}, want: []string{`template "proxy": volume "certs" clashes with the pod's own volume "certs"`}},
		{name: "two templates, one volume name, different volumes", templates: []*Template{proxy, otherVol},
			want: []string{`template "othervol": volume "certs" differs from the volume of that name injected by template "proxy"`}},
		{name: "mount path taken", pod: func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, templates: []*Template{mount}, want: []string{`template "mount": volumeMount of "cache" at /data clashes with container "app"'s mount of volume "data" there`}},
		{name: "every template's conflicts are reported", pod: func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "proxy"}) },
			templates: []*Template{sameVol, proxy, migrate}, want: []string{`template "proxy": container "proxy"`, `template "dbinit": container "migrate"`}},
		{name: "broken status annotation", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{names.SidecarStatusAnnotation: "injected!"} },
			templates: []*Template{proxy}, want: []string{"annotation sidecar.overcommit.dev/status is not valid JSON"}},
		{name: "stale status: containers partly removed", pod: func(p *corev1.Pod) {
			p.Annotations = map[string]string{names.SidecarStatusAnnotation: `{"templates":[{"name":"proxy","containers":["proxy","helper"]}]}`}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "proxy", Image: "p"})
		}, templates: []*Template{proxy}, want: []string{`container "proxy" clashes with container "proxy" that template "proxy" injected earlier (containers)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := appPod()
			if tc.pod != nil {
				tc.pod(pod)
			}
			before := pod.DeepCopy()
			res, err := Inject(pod, tc.templates)
			if err == nil {
				t.Fatalf("Inject succeeded: %+v", res)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Errorf("a failed injection changed the pod (-before +after):\n%s", diff)
			}
		})
	}
}

func TestInjectSharesIdenticalVolume(t *testing.T) {
	a := mustParse(t, "a", "volumes: [{name: certs, secret: {secretName: certs}}]\ncontainers: [{name: a, image: a}]")
	b := mustParse(t, "b", "volumes: [{name: certs, secret: {secretName: certs}}]\ncontainers: [{name: b, image: b}]")
	pod := appPod()
	if _, err := Inject(pod, []*Template{a, b}); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != 1 {
		t.Errorf("volumes = %v, want one shared", pod.Spec.Volumes)
	}
}

func TestInjectHostNetwork(t *testing.T) {
	skip := mustParse(t, "mesh", "skipHostNetwork: true\ncontainers: [{name: proxy, image: p}]")
	keep := mustParse(t, "logs", "containers: [{name: shipper, image: s}]")
	pod := appPod()
	pod.Spec.HostNetwork = true
	res, err := Inject(pod, []*Template{skip, keep})
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{Injected: []string{"logs"}, Skipped: []Skip{{Template: "mesh", Reason: "the pod uses hostNetwork and the template sets skipHostNetwork"}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app", "shipper"}, containerNames(pod.Spec.Containers)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}

func TestInjectRequested(t *testing.T) {
	known := map[string]*Template{"a": mustParse(t, "a", "containers: [{name: a, image: a}]")}
	lookup := func(name string) (*Template, error) {
		if name == "broken" {
			return nil, ErrInvalid
		}
		if tmpl, ok := known[name]; ok {
			return tmpl, nil
		}
		return nil, ErrNotFound
	}
	pod := appPod()
	if res, err := InjectRequested(pod, lookup); err != nil || res.Changed() {
		t.Fatalf("no annotation: %+v, %v", res, err)
	}
	pod.Annotations = map[string]string{names.SidecarInjectAnnotation: "nope,a,broken"}
	before := pod.DeepCopy()
	_, err := InjectRequested(pod, lookup)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want both lookup errors", err)
	}
	if diff := cmp.Diff(before, pod); diff != "" {
		t.Errorf("pod changed (-before +after):\n%s", diff)
	}
	pod.Annotations[names.SidecarInjectAnnotation] = "a"
	if res, err := InjectRequested(pod, lookup); err != nil || !res.Changed() {
		t.Fatalf("known template: %+v, %v", res, err)
	}
}
