package sidecar

import (
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestPatchAppliesToApply is the webhook's correctness oracle: the JSON patch of a plan, applied
// to the pod's JSON the way the apiserver applies it, gives exactly the pod that Apply gives.
func TestPatchAppliesToApply(t *testing.T) {
	mesh := mustParse(t, "mesh", `
native: true
initContainers: [{name: mesh-init, image: init}]
containers: [{name: mesh-proxy, image: proxy}]
env: [{name: LOG_LEVEL, value: info}, {name: MESH, value: "on"}]
volumes: [{name: certs, secret: {secretName: mesh-certs}}]
volumeMounts: [{name: certs, mountPath: /certs}]
`)
	logs := mustParse(t, "logs", `
containers: [{name: shipper, image: shipper}]
volumes: [{name: logs, emptyDir: {}}, {name: certs, secret: {secretName: mesh-certs}}]
volumeMounts: [{name: logs, mountPath: /logs}]
env: [{name: MESH, value: "off"}]
imagePullSecrets: [{name: regcred}, {name: other}]
`)
	bare := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	}
	rich := func() *corev1.Pod {
		p := appPod()
		p.Annotations = map[string]string{"team": "web"}
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "seed", Image: "app"})
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "worker", Image: "app",
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}})
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "mesh-certs"}}}}
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		return p
	}
	// injectedBefore is a pod that went through an earlier pass with mesh: the next pass must
	// put new init containers after mesh's and before the pod's own.
	injectedBefore := func() *corev1.Pod {
		p := rich()
		if _, err := Inject(p, []*Template{mesh}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// stale is a pod whose status records logs, but whose shipper container was removed.
	stale := func() *corev1.Pod {
		p := rich()
		if _, err := Inject(p, []*Template{logs}); err != nil {
			t.Fatal(err)
		}
		p.Spec.Containers = p.Spec.Containers[:len(p.Spec.Containers)-1]
		return p
	}
	meshInit := mustParse(t, "second", `
native: true
containers: [{name: second-proxy, image: proxy}]
`)
	tests := []struct {
		name      string
		pod       *corev1.Pod
		templates []*Template
	}{
		{"bare, both", bare(), []*Template{mesh, logs}},
		{"bare, classic only", bare(), []*Template{logs}},
		{"rich, both", rich(), []*Template{mesh, logs}},
		{"rich, logs then mesh", rich(), []*Template{logs, mesh}},
		{"after an earlier pass", injectedBefore(), []*Template{meshInit, logs}},
		{"after an earlier pass, all own inits injected", func() *corev1.Pod {
			p := injectedBefore()
			p.Spec.InitContainers = p.Spec.InitContainers[:2] // only mesh's
			return p
		}(), []*Template{meshInit}},
		{"stale record", stale(), []*Template{logs}},
		{"empty lists", func() *corev1.Pod {
			p := bare()
			p.Annotations = map[string]string{}
			p.Spec.Volumes, p.Spec.InitContainers = []corev1.Volume{}, []corev1.Container{}
			p.Spec.Containers[0].Env = []corev1.EnvVar{}
			return p
		}(), []*Template{mesh, logs}},
		{"annotation key with a tilde", func() *corev1.Pod {
			p := bare()
			p.Annotations = map[string]string{"a~b/c": "x", names.SidecarInjectAnnotation: "logs"}
			return p
		}(), []*Template{logs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := json.Marshal(tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := NewPlan(t.Context(), ViewOf(tt.pod), tt.templates)
			if err != nil {
				t.Fatal(err)
			}
			if !plan.Changed() {
				t.Fatal("nothing injected: the case proves nothing")
			}
			patch, err := plan.Patch(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ops, err := jsonpatch.DecodePatch(patch)
			if err != nil {
				t.Fatalf("invalid patch %s: %v", patch, err)
			}
			patched, err := ops.Apply(before)
			if err != nil {
				t.Fatalf("patch %s does not apply: %v", patch, err)
			}
			applied := *tt.pod // shallow: shares the original's slices and maps
			plan.Apply(&applied)
			if diff := cmp.Diff(canonicalJSON(t, &applied), canonicalJSON(t, patched)); diff != "" {
				t.Errorf("patch %s\n(-Apply +Patch):\n%s", patch, diff)
			}
			// Apply wrote into none of the slices and maps it shares with the original.
			after, _ := json.Marshal(tt.pod)
			if diff := cmp.Diff(string(before), string(after)); diff != "" {
				t.Errorf("Apply on a copy changed the original (-before +after):\n%s", diff)
			}
		})
	}
}

func canonicalJSON(t *testing.T, v any) any {
	t.Helper()
	raw, ok := v.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
