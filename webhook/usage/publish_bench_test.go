package usage

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// BenchmarkPublisherWrites counts what policy mode's published records cost in API writes:
// 1,000 nodes (16 CPUs, 64Gi; pods requesting 12 CPUs and 40Gi) replayed through the publisher's
// decisions (target and requests record) every 15-second round, the target taken either from each
// sample alone ("instant", what the publisher did before usage windows) or from the window's
// statistic after hysteresis ("window", history.DefaultConfig, the flags' defaults). Two traces of
// usage as a share of the requests: "swing" drifts through a ±15% cycle sped up to one hour, with
// ±5% jitter per sample (the trace of the earlier figure); "diurnal" follows a day's ±20% cycle,
// each node at its own phase so that the replayed hours cover the whole day across the nodes, with
// ±5% jitter and a two-minute burst of +25% about once an hour per node. The first hour fills the
// windows and is not counted; the next two are. It reports node writes per node-hour and, for
// 5,000 such nodes, all writes per second (the confirmation adds one per round).
func BenchmarkPublisherWrites(b *testing.B) {
	for _, trace := range []string{"swing", "diurnal"} {
		for _, source := range []string{"instant", "window"} {
			for _, threshold := range []string{"0.05", "0.1"} {
				b.Run(fmt.Sprintf("trace=%s/source=%s/threshold=%s", trace, source, threshold), func(b *testing.B) {
					benchmarkPublisherWrites(b, trace, source == "window", policy.MustParseRatio(threshold))
				})
			}
		}
	}
}

// traceShare is node i's usage as a share of its requests in round r.
type traceShare func(i, r int) float64

func newTrace(name string, nodes int, rng *rand.Rand) traceShare {
	const roundsPerHour = int(time.Hour / (15 * time.Second))
	base := make([]float64, nodes)
	phase := make([]float64, nodes)
	burstUntil := make([]int, nodes)
	for i := range base {
		base[i] = 0.2 + 0.4*rng.Float64()
		phase[i] = 2 * math.Pi * rng.Float64()
	}
	jitter := func() float64 { return 0.05 * (2*rng.Float64() - 1) }
	if name == "swing" {
		return func(i, r int) float64 {
			return max(0, base[i]+0.15*math.Sin(2*math.Pi*float64(r)/float64(roundsPerHour))+jitter())
		}
	}
	return func(i, r int) float64 {
		if r >= burstUntil[i] && rng.IntN(roundsPerHour) == 0 {
			burstUntil[i] = r + 8 // two minutes
		}
		s := base[i] + 0.2*math.Sin(phase[i]+2*math.Pi*float64(r)/float64(24*roundsPerHour)) + jitter()
		if r < burstUntil[i] {
			s += 0.25
		}
		return max(0, s)
	}
}

func benchmarkPublisherWrites(b *testing.B, trace string, window bool, threshold policy.Ratio) {
	const (
		nodes         = 1000
		round         = 15 * time.Second
		roundsPerHour = int(time.Hour / round)
		warmup        = roundsPerHour
		measured      = 2 * roundsPerHour
	)
	margin := policy.DefaultSettings().UsageMargin
	cfg := history.DefaultConfig()
	requests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("12"), corev1.ResourceMemory: resource.MustParse("40Gi")}
	raw := map[corev1.ResourceName]int64{corev1.ResourceCPU: 16000, corev1.ResourceMemory: 64 << 30}
	var writes int
	for range b.N {
		rng := rand.New(rand.NewPCG(1, 2))
		share := newTrace(trace, nodes, rng)
		p := &Publisher{o: PublishOptions{Threshold: threshold}}
		windows := make([]history.Node, nodes)
		target := make([]string, nodes)
		recorded := make([]string, nodes)
		writes = 0
		t0 := time.Unix(1_790_000_000, 0)
		for r := range warmup + measured {
			now := t0.Add(time.Duration(r) * round)
			for i := range nodes {
				s := share(i, r)
				cpu, mem := int64(12000*s), int64(40*(1<<30)*s)
				var stat *policy.Statistic
				if window {
					windows[i].Observe(cfg, now, cpu, mem)
					st, _, _ := windows[i].Usage(cfg)
					cpu, mem, stat = st.CPU, st.Memory, &st
				}
				var next policy.UsageTarget
				if stat != nil && stat.WarmingUp {
					next = policy.WarmupTarget(requests, raw)
				} else {
					next, _ = policy.TargetFromSample(policy.UsageSample{Requests: requests, Timestamp: now, Statistic: stat, Usage: corev1.ResourceList{
						corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, cpu), corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, mem)}}, margin)
				}
				kind := p.decide(target[i], target[i] != "", next, stat, raw)
				if kind != "" {
					target[i] = next.Format(stat)
				}
				moved := p.requestsMoved(recorded[i], recorded[i] != "", requests, raw)
				if moved {
					recorded[i] = policy.FormatRequests(requests)
				}
				if (kind != "" || moved) && r >= warmup {
					writes++
				}
			}
		}
	}
	perNodeHour := float64(writes) / nodes / float64(measured/roundsPerHour)
	b.ReportMetric(perNodeHour, "node-writes/node-hour")
	b.ReportMetric((perNodeHour*5000+float64(roundsPerHour))/time.Hour.Seconds(), "writes/s@5000nodes")
}
