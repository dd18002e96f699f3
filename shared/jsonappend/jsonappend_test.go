package jsonappend

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, `{"allocatable":{"cpu":"4"}}`, "<b>&amp;</b>",
		"tab\tnewline\n", "é ünïcödé", "\u2028\u2029", "invalid \xff utf-8", "~1/", "\x00\x1f"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(String(nil, s))); diff != "" {
			t.Errorf("String(%q) (-encoding/json +jsonappend):\n%s", s, diff)
		}
	}
}

func TestResourceListMatchesEncodingJSON(t *testing.T) {
	for name, l := range map[string]corev1.ResourceList{
		"nil":   nil,
		"empty": {},
		"cpu and memory": {corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourceCPU: resource.MustParse("3500m"),
			corev1.ResourcePods: resource.MustParse("110")},
		"non-canonical": {corev1.ResourceCPU: *resource.NewMilliQuantity(4000, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(1<<30+1, resource.BinarySI), "example.com/gpu": resource.MustParse("1e3")},
	} {
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(ResourceList(nil, l))); diff != "" {
			t.Errorf("%s (-encoding/json +jsonappend):\n%s", name, diff)
		}
	}
}

func TestPointerToken(t *testing.T) {
	for in, want := range map[string]string{"cpu": "cpu", "overcommit.dev/cpu-ratio": "overcommit.dev~1cpu-ratio", "a~/b": "a~0~1b"} {
		if got := PointerToken(in); got != want {
			t.Errorf("PointerToken(%q) = %q, want %q", in, got, want)
		}
	}
}
