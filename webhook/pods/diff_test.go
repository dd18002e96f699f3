package pods

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// TestDiffEqualsWholePodDiff guards the diff's shortcut: the patch from the injectable part
// equals the patch from whole pods, on a rich pod and on one with nothing but a container.
func TestDiffEqualsWholePodDiff(t *testing.T) {
	tmpls := &fakeTemplates{valid: map[string]*sidecar.Template{}, ready: true}
	for name, body := range fixtures.SidecarTemplates() {
		tm, err := sidecar.Parse(name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		tmpls.valid[name] = tm
	}
	bare := &corev1.Pod{ObjectMeta: fixtures.Pod().ObjectMeta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	bare.Annotations = map[string]string{names.SidecarInjectAnnotation: "proxy,log-shipper"}
	for name, pod := range map[string]*corev1.Pod{"rich": fixtures.Pod(), "bare": bare} {
		t.Run(name, func(t *testing.T) {
			mutated := pod.DeepCopy()
			if _, err := sidecar.InjectRequested(mutated, tmpls.Get); err != nil {
				t.Fatal(err)
			}
			got, err := diff(pod, mutated)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(pod)
			b, _ := json.Marshal(mutated)
			wholeOps, err := jsonpatch.CreatePatch(a, b)
			if err != nil {
				t.Fatal(err)
			}
			var gotOps []jsonpatch.Operation
			if err := json.Unmarshal(got, &gotOps); err != nil {
				t.Fatal(err)
			}
			if len(gotOps) == 0 {
				t.Fatal("no operations: the test proves nothing")
			}
			if diff := cmp.Diff(canonical(t, wholeOps), canonical(t, gotOps)); diff != "" {
				t.Errorf("(-whole pod +injectable part):\n%s", diff)
			}
		})
	}
}

func canonical(t *testing.T, ops []jsonpatch.Operation) []string {
	var out []string
	for _, op := range ops {
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}
