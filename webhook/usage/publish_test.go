package usage

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// TestPublisherDecide: a target is rewritten only past the threshold (5% of raw: 500m of 10
// CPUs), falls at once, rises at most once per MinRaiseInterval.
func TestPublisherDecide(t *testing.T) {
	t0 := time.Unix(1_790_000_000, 0)
	node := func(current string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10"), corev1.ResourceMemory: resource.MustParse("32Gi")}}}
		if current != "" {
			n.Annotations[names.UsageTargetAnnotation] = current
		}
		return n
	}
	target := func(cpu int64) policy.UsageTarget {
		return policy.UsageTarget{corev1.ResourceCPU: cpu, corev1.ResourceMemory: 0}
	}
	p := &Publisher{o: PublishOptions{Threshold: policy.MustParseRatio("0.05"), MinRaiseInterval: time.Minute}, lastRaise: map[string]time.Time{}}
	steps := []struct {
		name    string
		current string
		next    int64
		at      time.Duration
		want    string
	}{
		{"first target", "", 4000, 0, "raise"},
		{"within the threshold", "cpu=4000m,memory=0", 4500, 10 * time.Second, ""},
		{"rise too soon", "cpu=4000m,memory=0", 6000, 20 * time.Second, ""},
		{"fall at once", "cpu=4000m,memory=0", 3000, 30 * time.Second, "lower"},
		{"rise after the interval", "cpu=3000m,memory=0", 6000, 61 * time.Second, "raise"},
		{"unreadable is replaced", "cpu=1e3m,memory=0", 6000, 62 * time.Second, "lower"},
	}
	for _, s := range steps {
		got := p.decide(node(s.current), s.current, s.current != "", target(s.next), t0.Add(s.at))
		if got != s.want {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
		}
	}
}
