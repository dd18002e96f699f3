package usage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// stat is a trusted statistic of a full window with samples samples.
func stat(cpu, mem int64, samples int) *policy.Statistic {
	return &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: cpu, Memory: mem, Window: time.Hour, Samples: samples}
}

// warming is a statistic still warming up.
func warming(cpu, mem int64) *policy.Statistic {
	return &policy.Statistic{CPUPercentile: 95, MemoryPercentile: 100, CPU: cpu, Memory: mem, Window: 5 * time.Minute, Samples: 20, WarmingUp: true}
}

// TestPublisherDecide: a target is rewritten when a reclaim moves past the threshold (5% of raw:
// 500m of 10 CPUs, 1.6Gi of 32Gi) either way, or when the node enters or leaves warm-up; never
// for the statistic's counters alone. When it may rise is the statistic's hysteresis, upstream.
func TestPublisherDecide(t *testing.T) {
	raw := map[corev1.ResourceName]int64{corev1.ResourceCPU: 10000, corev1.ResourceMemory: 32 * gi}
	target := func(cpu, mem int64) policy.UsageTarget {
		return policy.UsageTarget{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	}
	published := func(cpu, mem int64, s *policy.Statistic) string { return target(cpu, mem).Format(s) }
	p := &Publisher{o: PublishOptions{Threshold: policy.MustParseRatio("0.05")}}
	tests := []struct {
		name    string
		current string // "" is none
		next    policy.UsageTarget
		stat    *policy.Statistic
		want    string
	}{
		{"first target", "", target(4000, gi), stat(1000, gi, 240), "raise"},
		{"unreadable is replaced", "cpu=1e3m,memory=0", target(4000, gi), stat(1000, gi, 240), "lower"},
		{"within the threshold, counters moved", published(4000, gi, stat(1000, gi, 200)), target(4500, gi+gi/2), stat(500, gi, 240), ""},
		{"rise past the threshold", published(4000, gi, stat(1000, gi, 240)), target(4501, gi), stat(499, gi, 240), "raise"},
		{"fall past the threshold", published(4000, gi, stat(1000, gi, 240)), target(3499, gi), stat(1501, gi, 240), "lower"},
		{"memory falls while cpu rises", published(4000, 4*gi, stat(1000, gi, 240)), target(6000, 2*gi), stat(1000, 3*gi, 240), "lower"},
		{"enters warm-up", published(4000, gi, stat(1000, gi, 240)), target(4000, gi), warming(1000, gi), "lower"},
		{"still warming up", published(4000, gi, warming(1000, gi)), target(4100, gi), warming(1100, gi), ""},
		{"leaves warm-up", published(4000, gi, warming(1000, gi)), target(4000, gi), stat(1000, gi, 40), "raise"},
		{"a record without a statistic gets one", "cpu=4000m,memory=1073741824", target(4000, gi), stat(1000, gi, 240), "raise"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.decide(tt.current, tt.current != "", tt.next, tt.stat, raw)); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPublisherRequestsMoved: the requests record is rewritten when missing, unreadable, or off
// by more than the threshold of raw allocatable in either direction.
func TestPublisherRequestsMoved(t *testing.T) {
	raw := map[corev1.ResourceName]int64{corev1.ResourceCPU: 10000, corev1.ResourceMemory: 32 * gi}
	p := &Publisher{o: PublishOptions{Threshold: policy.MustParseRatio("0.05")}}
	list := func(cpu, mem string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	}
	tests := []struct {
		name    string
		current string
		next    corev1.ResourceList
		want    bool
	}{
		{"missing", "", list("4", "8Gi"), true},
		{"unreadable", "cpu=4,memory=8Gi", list("4", "8Gi"), true},
		{"unchanged", "cpu=4000m,memory=8589934592", list("4", "8Gi"), false},
		{"within the threshold both ways", "cpu=4000m,memory=8589934592", list("4500m", "6.5Gi"), false},
		{"cpu up past it", "cpu=4000m,memory=8589934592", list("4501m", "8Gi"), true},
		{"memory down past it", "cpu=4000m,memory=8589934592", list("4", "6Gi"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.requestsMoved(tt.current, tt.current != "", tt.next, raw); got != tt.want {
				t.Errorf("requestsMoved = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeSource serves fixed samples and requests; a node missing from requests has none known.
type fakeSource struct {
	samples  map[string]*policy.UsageSample
	requests map[string]corev1.ResourceList
}

func (f *fakeSource) Synced() bool { return true }

func (f *fakeSource) Sample(node string) (*policy.UsageSample, string) {
	if s := f.samples[node]; s != nil {
		return s, ""
	}
	return nil, "no sample"
}

func (f *fakeSource) Requests(node string) (corev1.ResourceList, string) {
	if r, ok := f.requests[node]; ok {
		return r, ""
	}
	return nil, "unknown"
}

func resources(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

// TestPublisherRound runs one round against a fake clientset: every opted-in node gets its
// requests record, usage-policy nodes their target with its statistic (the requests of a
// warming-up node as its target), each node in one merge patch, nothing for records within the
// threshold, and one confirmation at the oldest sample behind a published target.
func TestPublisherRound(t *testing.T) {
	now := t0.Add(time.Hour)
	usage := map[string]string{names.PolicyAnnotation: names.PolicyUsage}
	node := func(name string, labels, ann map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: ann},
			Status: corev1.NodeStatus{Allocatable: resources("10", "32Gi")}}
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	optIn := map[string]string{names.EnabledLabel: names.EnabledValue}
	// u1's target: cpu 8000m - 2000m x 1.2 = 5600m; memory 16Gi - ceil(4Gi x 1.2).
	u1Target := "cpu=5600m,memory=12025908428,cpuUsage=p95:2000m,memoryUsage=p100:4294967296,window=3600s,samples=240"
	nodes := []runtime.Object{
		node("static", optIn, nil),
		node("static-leftover", optIn, with(nil, names.UsageTargetAnnotation, "cpu=1m,memory=0", names.RequestsAnnotation, "cpu=1000m,memory=1073741824")),
		node("usage", optIn, usage),
		node("settled", optIn, with(usage, names.UsageTargetAnnotation, policy.UsageTarget{corev1.ResourceCPU: 5600, corev1.ResourceMemory: 12025908428}.Format(stat(2000, 4*gi, 200)),
			names.RequestsAnnotation, "cpu=7500m,memory=17179869184")),
		node("warming", optIn, usage),
		node("stale", optIn, with(usage, names.UsageTargetAnnotation, "cpu=1m,memory=0")),
		node("not-opted-in", nil, usage),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "settings"}},
	}
	src := &fakeSource{
		samples: map[string]*policy.UsageSample{
			"usage":   {Requests: resources("8", "16Gi"), Usage: resources("2", "4Gi"), Timestamp: now.Add(-30 * time.Second), Statistic: stat(2000, 4*gi, 240)},
			"settled": {Requests: resources("8", "16Gi"), Usage: resources("2", "4Gi"), Timestamp: now.Add(-20 * time.Second), Statistic: stat(2000, 4*gi, 240)},
			"warming": {Requests: resources("3", "6Gi"), Usage: resources("1", "1Gi"), Timestamp: now.Add(-10 * time.Second), Statistic: warming(1000, gi)},
			"stale":   {Requests: resources("1", "1Gi"), Usage: resources("1", "1Gi"), Timestamp: now.Add(-4 * time.Minute), Statistic: stat(1000, gi, 240)},
		},
		requests: map[string]corev1.ResourceList{
			"static": resources("1", "1Gi"), "static-leftover": resources("1", "1Gi"), "usage": resources("8", "16Gi"),
			"settled": resources("8", "16Gi"), "warming": resources("3", "6Gi"), "stale": resources("1", "1Gi"),
		},
	}
	kube, p := startPublisher(t, src, nodes...)
	if err := p.Round(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"nodes/static":          `{"metadata":{"annotations":{"overcommit.dev/requests":"cpu=1000m,memory=1073741824"}}}`,
		"nodes/static-leftover": `{"metadata":{"annotations":{"overcommit.dev/usage-target":null}}}`,
		"nodes/usage":           `{"metadata":{"annotations":{"overcommit.dev/requests":"cpu=8000m,memory=17179869184","overcommit.dev/usage-target":"` + u1Target + `"}}}`,
		// Allocatable held at the requests: 3 - 10 cpus, 6Gi - 32Gi.
		"nodes/warming":       `{"metadata":{"annotations":{"overcommit.dev/requests":"cpu=3000m,memory=6442450944","overcommit.dev/usage-target":"cpu=-7000m,memory=-27917287424,cpuUsage=p95:1000m,memoryUsage=p100:1073741824,window=300s,samples=20,warming-up"}}}`,
		"nodes/stale":         `{"metadata":{"annotations":{"overcommit.dev/requests":"cpu=1000m,memory=1073741824","overcommit.dev/usage-target":null}}}`,
		"configmaps/settings": `{"data":{"usageTargetsConfirmedAt":"` + strconv.FormatInt(now.Add(-30*time.Second).Unix(), 10) + `"}}`,
	}
	if diff := cmp.Diff(want, patches(kube)); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	for kind, n := range map[string]float64{"raise": 2, "remove": 2, "requests": 1} {
		if got := testutil.ToFloat64(p.writes.WithLabelValues(kind, "ok")); got != n {
			t.Errorf("writes{kind=%s} = %v, want %v", kind, got, n)
		}
	}
}

// TestPublisherRoundUnconfirmed: a round that cannot vouch for every record still writes what
// it can, but confirms nothing.
func TestPublisherRoundUnconfirmed(t *testing.T) {
	optIn := map[string]string{names.EnabledLabel: names.EnabledValue}
	nodes := []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "known", Labels: optIn}, Status: corev1.NodeStatus{Allocatable: resources("10", "32Gi")}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "unknown", Labels: optIn}, Status: corev1.NodeStatus{Allocatable: resources("10", "32Gi")}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "failing", Labels: optIn}, Status: corev1.NodeStatus{Allocatable: resources("10", "32Gi")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "settings"}},
	}
	tests := []struct {
		name     string
		requests map[string]corev1.ResourceList
		failing  bool
		wantErr  string
	}{
		{name: "requests unknown", requests: map[string]corev1.ResourceList{"known": resources("1", "1Gi"), "failing": resources("1", "1Gi")},
			wantErr: "1 of 3 nodes not published, last: node unknown: unknown"},
		{name: "a write fails", requests: map[string]corev1.ResourceList{"known": resources("1", "1Gi"), "unknown": resources("1", "1Gi"), "failing": resources("1", "1Gi")},
			failing: true, wantErr: "1 of 3 nodes not published, last: node failing: conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube, p := startPublisher(t, &fakeSource{requests: tt.requests}, nodes...)
			if tt.failing {
				kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.(k8stesting.PatchAction).GetName() == "failing" {
						return true, nil, errors.New("conflict")
					}
					return false, nil, nil
				})
			}
			err := p.Round(context.Background(), t0)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Round = %v, want %q", err, tt.wantErr)
			}
			got := patches(kube)
			if _, ok := got["nodes/known"]; !ok {
				t.Errorf("the known node was not written: %v", got)
			}
			if c, ok := got["configmaps/settings"]; ok {
				t.Errorf("confirmed %s", c)
			}
		})
	}
}

// startPublisher is a publisher over a fake clientset holding objs, its node cache synced.
func startPublisher(t *testing.T, src sampler, objs ...runtime.Object) (*fake.Clientset, *Publisher) {
	t.Helper()
	kube := fake.NewClientset(objs...)
	nodes := NewNodeCache(kube)
	p := newPublisher(kube, nodes, src, settings.Fixed(policy.DefaultSettings()), "ns", "settings", PublishOptions{
		Interval: time.Minute, Threshold: policy.MustParseRatio("0.1"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nodes.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Synced) {
		t.Fatal("node cache never synced")
	}
	return kube, p
}

// patches is every patch sent, by resource/name.
func patches(kube *fake.Clientset) map[string]string {
	out := map[string]string{}
	for _, a := range kube.Actions() {
		if pa, ok := a.(k8stesting.PatchAction); ok {
			out[pa.GetResource().Resource+"/"+pa.GetName()] = string(pa.GetPatch())
		}
	}
	return out
}
