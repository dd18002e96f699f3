package pods

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// TestReadViewMatchesViewOf: the webhook's one-pass reader sees a pod's JSON exactly as the
// plugin's typed view sees the decoded pod, so both plan the same injection.
func TestReadViewMatchesViewOf(t *testing.T) {
	rich := fixtures.Pod()
	rich.Spec.HostNetwork = true
	rich.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
	rich.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "a"}, {Name: "b"}}
	rich.Annotations[names.SidecarStatusAnnotation] = `{"templates":[{"name":"x","containers":["y"]}]}`
	for name, pod := range map[string]*corev1.Pod{
		"fixture": rich,
		"minimal": {ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			got, id, err := readView(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := sidecar.ViewOf(pod)
			if len(want.Containers) == 0 {
				t.Fatal("empty view: the case proves nothing")
			}
			// Volumes: the reader keeps JSON, the typed view pointers; compare them decoded.
			volumes := cmp.Transformer("decode", func(v sidecar.VolumeView) corev1.Volume {
				if v.Volume != nil {
					return *v.Volume
				}
				var vol corev1.Volume
				if err := json.Unmarshal(v.JSON, &vol); err != nil {
					t.Fatalf("volume %q: %v", v.Name, err)
				}
				return vol
			})
			if diff := cmp.Diff(want, got, volumes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-ViewOf +readView):\n%s", diff)
			}
			if id.name != pod.Name || id.generateName != pod.GenerateName {
				t.Errorf("id = %+v, want name %q generateName %q", id, pod.Name, pod.GenerateName)
			}
		})
	}
}

func TestReadViewErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"truncated":          `{"metadata":{"name":"x"},"spec":{"containers":[{"name":"a"}`,
		"containers object":  `{"spec":{"containers":{"name":"a"}}}`,
		"name number":        `{"spec":{"containers":[{"name":5}]}}`,
		"annotation number":  `{"metadata":{"annotations":{"sidecar.overcommit.dev/inject":1}}}`,
		"hostNetwork string": `{"spec":{"hostNetwork":"yes"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := readView([]byte(raw)); err == nil {
				t.Errorf("readView(%s) accepted it", raw)
			}
		})
	}
}
