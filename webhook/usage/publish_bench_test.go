package usage

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// BenchmarkPublisherWrites counts what policy mode's usage targets cost in API writes: 5,000
// nodes (16 CPUs, 64Gi, pods requesting 12 CPUs and 40Gi) replayed through the publisher's
// decision for one hour of 15-second rounds, with usage that drifts (a diurnal swing, sped up to
// an hour) and jitters ±5% per sample. It reports node writes per node-hour and all writes per
// second across the cluster (the confirmation adds one per round).
func BenchmarkPublisherWrites(b *testing.B) {
	for _, c := range []struct {
		threshold string
		raise     time.Duration
	}{{"0.05", time.Minute}, {"0.1", time.Minute}, {"0.05", 5 * time.Minute}, {"0.1", 5 * time.Minute}} {
		b.Run(fmt.Sprintf("threshold=%s/raise=%s", c.threshold, c.raise), func(b *testing.B) {
			benchmarkPublisherWrites(b, policy.MustParseRatio(c.threshold), c.raise)
		})
	}
}

func benchmarkPublisherWrites(b *testing.B, threshold policy.Ratio, raise time.Duration) {
	const (
		nodes  = 5000
		round  = 15 * time.Second
		rounds = int(time.Hour / round)
	)
	margin := policy.DefaultSettings().UsageMargin
	var nodeWrites int
	for range b.N {
		rng := rand.New(rand.NewPCG(1, 2))
		p := &Publisher{o: PublishOptions{Threshold: threshold, MinRaiseInterval: raise}, lastRaise: map[string]time.Time{}}
		current := make([]string, nodes)
		base := make([]float64, nodes)
		for i := range base {
			base[i] = 0.2 + 0.4*rng.Float64()
		}
		nodeWrites = 0
		t0 := time.Unix(1_790_000_000, 0)
		for r := range rounds {
			now := t0.Add(time.Duration(r) * round)
			swing := 0.15 * math.Sin(2*math.Pi*float64(r)/float64(rounds))
			for i := range nodes {
				share := max(0, base[i]+swing+0.05*(2*rng.Float64()-1))
				sample := policy.UsageSample{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("12"), corev1.ResourceMemory: resource.MustParse("40Gi")},
					Usage: corev1.ResourceList{
						corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(12000*share), resource.DecimalSI),
						corev1.ResourceMemory: *resource.NewQuantity(int64(40*(1<<30)*share), resource.BinarySI)},
					Timestamp: now}
				target, _ := policy.TargetFromSample(sample, margin)
				n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("node-", i), Annotations: map[string]string{}},
					Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")}}}
				if current[i] != "" {
					n.Annotations[names.UsageTargetAnnotation] = current[i]
				}
				if p.decide(n, current[i], current[i] != "", target, now) != "" {
					current[i] = target.String()
					nodeWrites++
				}
			}
		}
	}
	b.ReportMetric(float64(nodeWrites)/nodes, "node-writes/node-hour")
	b.ReportMetric((float64(nodeWrites)+float64(rounds))/time.Hour.Seconds(), "writes/s@5000nodes")
}
