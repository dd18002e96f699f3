package usage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var t0 = time.Unix(1_790_000_000, 0)

// fakeMetrics serves a NodeMetrics list that the test sets before each poll. (The fake
// clientset's tracker files NodeMetrics under a resource its LIST does not read, so a reactor
// answers instead.)
type fakeMetrics struct {
	items []metricsv1beta1.NodeMetrics
	err   error
}

func (f *fakeMetrics) client() *metricsfake.Clientset {
	c := metricsfake.NewSimpleClientset()
	c.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if f.err != nil {
			return true, nil, f.err
		}
		return true, &metricsv1beta1.NodeMetricsList{Items: f.items}, nil
	})
	return c
}

// usageAt is a node's NodeMetrics measured s seconds after t0.
func usageAt(node string, s int, cpu, mem string) metricsv1beta1.NodeMetrics {
	u := corev1.ResourceList{}
	if cpu != "" {
		u[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		u[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return metricsv1beta1.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: node},
		Timestamp: metav1.NewTime(t0.Add(time.Duration(s) * time.Second)), Window: metav1.Duration{Duration: 15 * time.Second}, Usage: u}
}

// testSource is a Source over a synced pod cache holding pods and a poller of fake metrics,
// driven by the test (poll) rather than by a ticker.
func testSource(t *testing.T, c history.Config, f *fakeMetrics, pods ...*corev1.Pod) (*Source, *pollResult) {
	t.Helper()
	kube := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, p := range pods {
		if _, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := newPodCache(kube, 0)
	if err != nil {
		t.Fatal(err)
	}
	go pc.run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), pc.synced) {
		t.Fatal("pod cache never synced")
	}
	last := &pollResult{}
	return &Source{pods: pc, metrics: &metricsPoller{client: f.client(), interval: 15 * time.Second, timeout: time.Second, config: c,
		onPoll: func(r pollResult) { *last = r }}}, last
}

// pollAt runs one refresh with the poller's clock at s seconds after t0.
func (s *Source) pollAt(sec int) {
	s.metrics.now = func() time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	s.metrics.poll(context.Background())
}

// testConfig is a short window, so that tests move samples out of it in a few polls: trusted
// after 30s, raised after a minute lower by more than 250m or 256Mi.
var testConfig = history.Config{Window: 2 * time.Minute, MinWindow: 30 * time.Second, CPUPercentile: 95, MemoryPercentile: 100,
	RaiseAfter: time.Minute, CPUStep: 250, MemoryStep: 256 << 20}

// seen is what a test compares of a Sample: its usage as text, the rest as is.
type seen struct {
	Requests, Usage string
	Timestamp       time.Time
	Statistic       *policy.Statistic
	Why             string
}

func see(s *policy.UsageSample, why string) seen {
	if s == nil {
		return seen{Why: why}
	}
	out := seen{Requests: policy.FormatRequests(s.Requests), Timestamp: s.Timestamp, Statistic: s.Statistic, Why: why}
	if s.Usage != nil {
		out.Usage = policy.FormatRequests(s.Usage)
	}
	return out
}

const (
	mi = 1 << 20
	gi = 1 << 30
)

// TestSourceSample feeds NodeMetrics lists through the poller into the nodes' windows and reads
// Sample as the node webhook and the publisher do: the usage is the window's statistic after
// hysteresis, as of the newest sample, next to the live requests.
func TestSourceSample(t *testing.T) {
	// The requests of the pods on n1: 1 cpu and 10m of a sidecar, 1Gi and 1Mi of overhead.
	n1Requests := "cpu=1010m,memory=1074790400"
	// every returns one list per 15 s from from to to seconds, each with n1's usage then.
	every := func(from, to int, cpu, mem string) []step {
		var out []step
		for s := from; s <= to; s += 15 {
			out = append(out, step{at: s, items: []metricsv1beta1.NodeMetrics{usageAt("n1", s, cpu, mem)}})
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		node  string
		want  seen
		poll  pollResult
	}{
		{name: "one sample: warming up, usage rounded up to millicores and MiB",
			steps: []step{{at: 0, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 0, "1234567890n", "1000Ki")}}},
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=1235m,memory=1048576", Timestamp: t0,
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 1235, Memory: mi, Samples: 1, WarmingUp: true}},
			poll: pollResult{listed: 1, held: 1, warmingUp: 1, samples: 1}},
		{name: "a sample listed twice counts once",
			steps: []step{{at: 0, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 0, "1", "1Gi")}},
				{at: 15, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 0, "1", "1Gi")}}},
			node: "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=1000m,memory=1073741824", Timestamp: t0,
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 1000, Memory: gi, Samples: 1, WarmingUp: true}},
			poll: pollResult{listed: 1, held: 1, warmingUp: 1, samples: 1}},
		{name: "trusted once the window spans the minimum",
			steps: every(0, 30, "1", "1Gi"),
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=1000m,memory=1073741824", Timestamp: t0.Add(30 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 1000, Memory: gi, Window: 30 * time.Second, Samples: 3}},
			poll: pollResult{listed: 1, held: 1, samples: 3}},
		{name: "a rise is taken at once",
			steps: cat(every(0, 60, "1", "1Gi"), every(75, 75, "3", "2Gi")),
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=3000m,memory=2147483648", Timestamp: t0.Add(75 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 3000, Memory: 2 * gi, Window: 75 * time.Second, Samples: 6}},
			poll: pollResult{listed: 1, held: 1, samples: 6}},
		// 2 cpu until 120s, then 500m: the window holds only 500m from 255s on, and the
		// statistic must stay lower for a minute before the node gets the room back.
		{name: "a fall is held while the window is lower for less than raise-after",
			steps: cat(every(0, 120, "2", "1Gi"), every(135, 270, "500m", "1Gi")),
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=2000m,memory=1073741824", Timestamp: t0.Add(270 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 2000, Memory: gi, Window: 120 * time.Second, Samples: 9}},
			poll: pollResult{listed: 1, held: 1, samples: 9}},
		{name: "a fall is taken once it has lasted raise-after",
			steps: cat(every(0, 120, "2", "1Gi"), every(135, 330, "500m", "1Gi")),
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=500m,memory=1073741824", Timestamp: t0.Add(330 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 500, Memory: gi, Window: 120 * time.Second, Samples: 9}},
			poll: pollResult{listed: 1, held: 1, samples: 9}},
		{name: "a node without metrics has requests and no usage",
			steps: every(0, 0, "1", "1Gi"),
			node:  "n2",
			want:  seen{Requests: "cpu=0m,memory=0"},
			poll:  pollResult{listed: 1, held: 1, warmingUp: 1, samples: 1}},
		{name: "a sample without memory is not a sample",
			steps: []step{{at: 0, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 0, "1", "")}}},
			node:  "n1",
			want:  seen{Requests: n1Requests},
			poll:  pollResult{listed: 1}},
		{name: "a sample from the future is not taken; one a few seconds ahead is",
			steps: []step{{at: 0, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 60, "5", "5Gi")}},
				{at: 15, items: []metricsv1beta1.NodeMetrics{usageAt("n1", 18, "1", "1Gi")}}},
			node: "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=1000m,memory=1073741824", Timestamp: t0.Add(18 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 1000, Memory: gi, Samples: 1, WarmingUp: true}},
			poll: pollResult{listed: 1, held: 1, warmingUp: 1, samples: 1}},
		{name: "a failed list keeps the windows: the newest sample's age tells",
			steps: append(every(0, 30, "1", "1Gi"), step{at: 45, err: errors.New("boom")}),
			node:  "n1",
			want: seen{Requests: n1Requests, Usage: "cpu=1000m,memory=1073741824", Timestamp: t0.Add(30 * time.Second),
				Statistic: &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: 1000, Memory: gi, Window: 30 * time.Second, Samples: 3}},
			poll: pollResult{err: errors.New("listing NodeMetrics: boom")}},
		{name: "a node without a window during a failed list: why",
			steps: append(every(0, 30, "1", "1Gi"), step{at: 45, err: errors.New("boom")}),
			node:  "n2",
			want:  seen{Why: "metrics.k8s.io unavailable (listing NodeMetrics: boom)"},
			poll:  pollResult{err: errors.New("listing NodeMetrics: boom")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeMetrics{}
			src, last := testSource(t, testConfig, f, testPod("a", "n1", "1", "1Gi"))
			for _, s := range tt.steps {
				f.items, f.err = s.items, s.err
				src.pollAt(s.at)
			}
			if diff := cmp.Diff(tt.want, see(src.Sample(tt.node))); diff != "" {
				t.Errorf("Sample(%s) (-want +got):\n%s", tt.node, diff)
			}
			if diff := cmp.Diff(tt.poll, *last, cmp.AllowUnexported(pollResult{}), cmp.Comparer(sameError)); diff != "" {
				t.Errorf("last poll (-want +got):\n%s", diff)
			}
		})
	}
}

// step is one poll: the poller's clock at s seconds after t0, and the list it gets.
type step struct {
	at    int
	items []metricsv1beta1.NodeMetrics
	err   error
}

func sameError(a, b error) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Error() == b.Error()
}

// TestSourcePrunes: a node's window is kept while it is absent from the lists for up to the
// window, and forgotten after: by then every sample in it would have dropped out anyway.
func TestSourcePrunes(t *testing.T) {
	f := &fakeMetrics{}
	src, last := testSource(t, testConfig, f)
	f.items = []metricsv1beta1.NodeMetrics{usageAt("gone", 0, "1", "1Gi"), usageAt("n1", 0, "1", "1Gi")}
	src.pollAt(0)
	f.items = []metricsv1beta1.NodeMetrics{usageAt("n1", 100, "1", "1Gi")}
	steps := []struct {
		at       int
		wantHeld bool
	}{
		{at: 100, wantHeld: true},
		{at: 120, wantHeld: true}, // absent for exactly the window
		{at: 121},
	}
	for _, s := range steps {
		src.pollAt(s.at)
		sample, _ := src.Sample("gone")
		if held := sample.Usage != nil; held != s.wantHeld {
			t.Errorf("at %ds: node absent since 0s has a statistic: %v, want %v", s.at, held, s.wantHeld)
		}
		if _, ok := src.metrics.windows["gone"]; ok != s.wantHeld {
			t.Errorf("at %ds: window kept: %v, want %v", s.at, ok, s.wantHeld)
		}
	}
	if last.held != 1 || last.listed != 1 {
		t.Errorf("last poll %+v, want one node listed and held", *last)
	}
}

// TestSourceRequests: the pressure guard's requests, for any node, from the pod cache alone.
func TestSourceRequests(t *testing.T) {
	f := &fakeMetrics{}
	src, _ := testSource(t, testConfig, f, testPod("a", "n1", "1", "1Gi"), testPod("b", "n1", "250m", "256Mi"))
	tests := []struct {
		node, want string
	}{
		{"n1", "cpu=1270m,memory=1344274432"},
		{"empty", "cpu=0m,memory=0"}, // known to be none: not nil
	}
	for _, tt := range tests {
		got, why := src.Requests(tt.node)
		if got == nil || why != "" {
			t.Fatalf("Requests(%s) = nil, %q", tt.node, why)
		}
		if diff := cmp.Diff(tt.want, policy.FormatRequests(got)); diff != "" {
			t.Errorf("Requests(%s) (-want +got):\n%s", tt.node, diff)
		}
	}

	unsynced, err := newPodCache(fake.NewClientset(), 0)
	if err != nil {
		t.Fatal(err)
	}
	src.pods = unsynced
	const why = "pod cache not synced yet"
	if r, got := src.Requests("n1"); r != nil || got != why {
		t.Errorf("unsynced: Requests = %v, %q; want nil, %q", r, got, why)
	}
	if r, got := src.Sample("n1"); r != nil || got != why {
		t.Errorf("unsynced: Sample = %+v, %q; want nil, %q", r, got, why)
	}
}
