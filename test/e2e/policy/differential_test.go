//go:build e2e

package policy

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	evanjsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/nodepatch"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var (
	cases = flag.Int("differential-cases", 2000, "random status writes the differential test sends")
	seed  = flag.Uint64("seed", 0, "seed of the differential test (0: a new one, printed)")
)

// TestPolicyMatchesCompute sends random nodes through the real apiserver as server dry-run
// writes with the MutatingAdmissionPolicy installed, and compares every result with what
// policy.Compute and nodepatch.Operations say the webhook would store: the two modes must agree
// to the byte on the records and to the value on allocatable and capacity.
func TestPolicyMatchesCompute(t *testing.T) {
	s := *seed
	if s == 0 {
		s = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -args -seed=%d)", s, s)
	const workers = 4
	var (
		sent, differ atomic.Int64
		seen         coverage
		mu           sync.Mutex
		reported     int
		wg           sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(s, uint64(w)))
			name := fmt.Sprintf("diff-%d", w)
			admin, kubelet := env.Client(), impersonate(t, names.KubeletUser(name))
			for i := w; i < *cases; i += workers {
				c := randomCase(rng, name)
				res, diff, err := c.run(admin, kubelet)
				// The node lifecycle controller taints these kubelet-less nodes now and then.
				for try := 0; try < 20 && racedController(err); try++ {
					res, diff, err = c.run(admin, kubelet)
				}
				sent.Add(1)
				if err == nil {
					seen.add(c, res)
				}
				if err == nil && diff == "" {
					continue
				}
				differ.Add(1)
				mu.Lock()
				if reported < 10 {
					reported++
					t.Errorf("case %d (%s): %v%s\ncase: %s", i, c.writerKind(), err, diff, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d writes, %d differences; %s", sent.Load(), differ.Load(), seen.String())
	if differ.Load() > 0 {
		t.Fatalf("%d of %d writes stored something other than policy.Compute", differ.Load(), sent.Load())
	}
	// The generator must reach every part of the policy, or agreement proves little.
	if *cases >= 1000 {
		for _, m := range seen.missing() {
			t.Errorf("no write %s (seed %d)", m, s)
		}
	}
}

// coverage counts the writes that reached the parts of the policy a generator could miss.
type coverage struct {
	records, usage, warmingUp, hold, cooling, heldAtRequests, heldAtRaw atomic.Int64
}

func (cv *coverage) add(c dcase, res policy.Result) {
	if res.AppliedRecord == "" {
		return
	}
	count := func(n *atomic.Int64, yes bool) {
		if yes {
			n.Add(1)
		}
	}
	mem, pid := policy.Conditions(c.conditions)
	held, atRaw := false, false
	for _, w := range res.Warnings {
		held = held || strings.HasPrefix(w, "pressure guard (")
		atRaw = atRaw || strings.HasSuffix(w, "holding at the raw allocatable")
	}
	count(&cv.records, true)
	count(&cv.usage, res.Applied.Usage != "")
	count(&cv.warmingUp, strings.HasSuffix(res.Applied.Usage, ",warming-up"))
	count(&cv.hold, res.Applied.Hold != "")
	count(&cv.cooling, res.Applied.Hold != "" && !mem.True && !pid.True)
	count(&cv.heldAtRequests, held && !atRaw)
	count(&cv.heldAtRaw, held && atRaw)
}

func (cv *coverage) parts() []struct {
	what string
	n    int64
} {
	return []struct {
		what string
		n    int64
	}{
		{"stored records", cv.records.Load()},
		{"recorded a usage statistic", cv.usage.Load()},
		{"recorded a warming-up statistic", cv.warmingUp.Load()},
		{"recorded a hold", cv.hold.Load()},
		{"held while cooling down", cv.cooling.Load()},
		{"was held at the published requests", cv.heldAtRequests.Load()},
		{"was held at raw (requests unknown)", cv.heldAtRaw.Load()},
	}
}

func (cv *coverage) String() string {
	var out []string
	for _, p := range cv.parts() {
		out = append(out, fmt.Sprintf("%d %s", p.n, p.what))
	}
	return strings.Join(out, ", ")
}

func (cv *coverage) missing() []string {
	var out []string
	for _, p := range cv.parts() {
		if p.n == 0 {
			out = append(out, p.what)
		}
	}
	return out
}

// racedController reports an error caused by the node lifecycle controller writing the node
// between the case's store and its write: a conflict, or (for the kubelet, which may not change
// taints) a taint it added meanwhile.
func racedController(err error) bool {
	return apierrors.IsConflict(err) || (err != nil && strings.Contains(err.Error(), "is not allowed to modify taints"))
}

// dcase is one random write: what is stored before it, and what the write sends.
type dcase struct {
	node        string
	create      bool // a CREATE instead of a status UPDATE
	kubelet     bool
	annotations map[string]string
	stored      corev1.ResourceList // allocatable stored before the write
	storedCap   corev1.ResourceList
	alloc, cap  corev1.ResourceList // what the write carries
	conditions  []corev1.NodeCondition
}

func (c dcase) writerKind() string {
	op := "status update"
	if c.create {
		op = "create"
	}
	if c.kubelet {
		return op + " by the kubelet"
	}
	return op + " by an admin"
}

func (c dcase) String() string {
	b, _ := json.Marshal(map[string]any{"annotations": c.annotations, "stored": c.stored, "storedCapacity": c.storedCap,
		"allocatable": c.alloc, "capacity": c.cap, "create": c.create, "kubelet": c.kubelet, "conditions": c.conditions})
	return string(b)
}

var (
	// No sub-millicore values: the apiserver rounds cpu up to whole millicores when it decodes
	// a node, before admission (policy's own tests cover them).
	cpuValues = []string{"1", "2", "4", "3900m", "100m", "0", "2k", "4e15", "8e15", "10P", "1e400",
		"36028797018963968m", "36028797018963969m", "9223372036854775807", "7800m", "5850m", "2500m", "0.5"}
	memoryValues = []string{"3840Mi", "15783436Ki", "16Gi", "1500m", "6Ei", "7Ei", "0", "1Gi", "36028797018963968", "32Pi", "31Pi", "33Pi",
		"36028797018963969", "123456789", "1.5Gi", "8G"}
	targetValues = []string{"cpu=0m,memory=0", "cpu=99999999999999999m,memory=99999999999999999", "cpu=-99999999999999999m,memory=-1",
		"cpu=1m,memory=1Gi", "cpu=1,memory=1", "cpu=1e3m,memory=0", "", "cpu=500m", "cpu=100000000000000000m,memory=0",
		// With the statistic the reclaim came from: the longest record, leading zeros (recorded
		// as Statistic.String spells them), percentiles out of range, and damaged ones.
		"cpu=-99999999999999999m,memory=-99999999999999999,cpuUsage=p100:99999999999999999m,memoryUsage=p100:99999999999999999,window=9999999s,samples=999999,warming-up",
		"cpu=-99999999999999999m,memory=-99999999999999999,cpuUsage=p100:99999999999999999m,memoryUsage=p100:99999999999999999,window=9999999s,samples=999999,warming-up,",
		"cpu=2000m,memory=1073741824,cpuUsage=p095:0001500m,memoryUsage=p100:000,window=0600s,samples=040",
		"cpu=2000m,memory=1073741824,cpuUsage=p0:1500m,memoryUsage=p100:0,window=600s,samples=40",
		"cpu=2000m,memory=1073741824,cpuUsage=p95:1500m,memoryUsage=p101:0,window=600s,samples=40",
		"cpu=2000m,memory=1073741824,cpuUsage=p999:1500m,memoryUsage=p100:0,window=600s,samples=40",
		"cpu=2000m,memory=1073741824,cpuUsage=p95:1500m,memoryUsage=p100:0,window=600s,samples=40,warming-up,warming-up",
		"cpu=2000m,memory=1073741824,cpuUsage=p95:1500m,memoryUsage=p100:0,window=10m,samples=40",
		"cpu=2000m,memory=1073741824cpuUsage=p95:1500m,memoryUsage=p100:0,window=600s,samples=40",
		"cpu=2000m,memory=1073741824,",
		"cpu=2000m,memory=1073741824,cpuUsage=p95:1500m,memoryUsage=p100:0,window=600s,samples=40,Warming-up"}
	// The pods' summed requests: valid, above MaxAmount, and not in the layout.
	requestsValues = []string{"cpu=0m,memory=0", "cpu=99999999999999999m,memory=99999999999999999", "cpu=36028797018963969m,memory=36028797018963969",
		"cpu=1,memory=1", "cpu=-1m,memory=0", "", "cpu=1m", "cpu=1m,memory=1,", " cpu=1m,memory=1", "cpu=000000000000000001m,memory=1",
		"cpu=0004000m,memory=017179869184", "cpu=4000m,memory=16Gi"}
	ratioValues = []string{"2", "1.5", "1", "3.5", "4", "abc", "0.5", "999999", "1.3333339", "1e1", " 2", "+2", "", "1.25", "3.50"}
	// Applied records that are not ours but name a hold: the guard reads the hold of any record
	// of at most MaxRecordLength characters (not bytes), readable or not.
	heldRecords = []string{`{"hold":"memory-pressure"}`, `{"policy":"static","hold":"pid-pressure","allocatable":{"cpu":"4"}}`,
		`{"hold":"memory-pressure,pid-pressure","allocatable":{"cpu":"4000m","memory":"1Gi"}}`,
		`{"hold":"aaaaaaaaaaaaaaaamemory-pressure","allocatable":{"cpu":"4"}}`, `{"hold":"aaaaaaaaaaaaaaaaamemory-pressure","allocatable":{"cpu":"4"}}`,
		`{"hold":"MEMORY-PRESSURE","allocatable":{"cpu":"4"}}`, `{"hold": "pid-pressure","allocatable":{"cpu":"4"}}`,
		strings.Repeat("x", 1100) + `"hold":"memory-pressure"`, strings.Repeat("é", 990) + `"hold":"pid-pressure"`,
		strings.Repeat("é", 1000) + `"hold":"pid-pressure"`}
)

func pick(rng *rand.Rand, vs []string) string { return vs[rng.IntN(len(vs))] }

func randomCPU(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return fmt.Sprintf("%dm", rng.IntN(64_000))
	}
	return pick(rng, cpuValues)
}

func randomMemory(rng *rand.Rand) string {
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprintf("%dKi", rng.IntN(64<<20))
	case 1:
		return fmt.Sprintf("%d", rng.Int64N(1<<40))
	}
	return pick(rng, memoryValues)
}

func randomList(rng *rand.Rand) corev1.ResourceList {
	l := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	if rng.IntN(10) > 0 {
		l[corev1.ResourceCPU] = resource.MustParse(randomCPU(rng))
	}
	if rng.IntN(10) > 0 {
		l[corev1.ResourceMemory] = resource.MustParse(randomMemory(rng))
	}
	return l
}

// randomConditions gives the node's clock (its newest heartbeat) on either side of the
// settings' confirmation of the usage targets, exactly at the age limit, before 1970 (negative
// Unix seconds, still a clock), or none at all; and MemoryPressure and PIDPressure conditions True, False or Unknown, which turned
// so before, within or after the pressure guard's cool-down by that clock, or at no known time,
// now and then twice (the last counts).
func randomConditions(rng *rand.Rand) []corev1.NodeCondition {
	maxAge := settings.MaxMetricsAge
	offsets := []time.Duration{-time.Hour, 0, time.Second, maxAge - time.Second, maxAge, maxAge + time.Second, time.Hour, -500_000 * time.Hour}
	var cs []corev1.NodeCondition
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if rng.IntN(3) == 0 {
			continue
		}
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: "E2E", LastTransitionTime: metav1.NewTime(confirmedAt)}
		if t == corev1.NodeReady {
			c.Status = corev1.ConditionTrue
		}
		if rng.IntN(6) > 0 {
			c.LastHeartbeatTime = metav1.NewTime(confirmedAt.Add(offsets[rng.IntN(len(offsets))]))
		}
		cs = append(cs, c)
	}
	clock := policy.Heartbeat(cs)
	if clock.IsZero() {
		clock = confirmedAt
	}
	cool := policy.PressureCooldown
	since := []time.Duration{0, time.Second, cool - time.Second, cool, cool + time.Second, time.Hour, -time.Minute}
	statuses := []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionFalse, corev1.ConditionUnknown}
	for i := range cs {
		if cs[i].Type != corev1.NodeMemoryPressure && cs[i].Type != corev1.NodePIDPressure {
			continue
		}
		cs[i].Status = statuses[rng.IntN(len(statuses))]
		cs[i].LastTransitionTime = metav1.NewTime(clock.Add(-since[rng.IntN(len(since))]))
		if rng.IntN(8) == 0 {
			cs[i].LastTransitionTime = metav1.Time{}
		}
		if rng.IntN(8) == 0 {
			again := cs[i]
			again.Status = statuses[rng.IntN(len(statuses))]
			cs = append(cs, again)
		}
	}
	return cs
}

var number = regexp.MustCompile(`[0-9]+`)

// randomStatistic is a statistic as the publisher writes it (Statistic.String), or now and then
// with leading zeros, which the pattern allows and the record drops, or a percentile out of range.
func randomStatistic(rng *rand.Rand) string {
	pct := func() int {
		if rng.IntN(10) == 0 {
			return rng.IntN(200)
		}
		return []int{1, 50, 90, 95, 99, 100}[rng.IntN(6)]
	}
	st := policy.Statistic{CPUPercentile: pct(), MemoryPercentile: pct(), CPU: rng.Int64N(64_000), Memory: rng.Int64N(64 << 30),
		Window: time.Duration(rng.IntN(7200)) * time.Second, Samples: rng.IntN(500), WarmingUp: rng.IntN(4) == 0}
	text := st.String()
	if rng.IntN(5) == 0 {
		// Within the pattern's digit counts: a percentile has at most 3.
		text = number.ReplaceAllStringFunc(text, func(n string) string {
			if len(n) < 3 {
				return "0" + n
			}
			return n
		})
	}
	return text
}

func randomCase(rng *rand.Rand, node string) dcase {
	c := dcase{node: node, kubelet: rng.IntN(2) == 0, create: rng.IntN(10) == 0, annotations: map[string]string{}}
	if c.create {
		c.node = fmt.Sprintf("%s-new-%d", node, rng.IntN(1<<30))
	}
	for _, a := range []struct {
		key  string
		vals []string
	}{
		{names.PolicyAnnotation, []string{"static", "usage", "usage", "magic", ""}},
		{names.CPURatioAnnotation, ratioValues},
		{names.MemoryRatioAnnotation, ratioValues},
		{names.UsageTargetAnnotation, targetValues},
		{names.RequestsAnnotation, requestsValues},
	} {
		if rng.IntN(3) > 0 {
			c.annotations[a.key] = pick(rng, a.vals)
		}
	}
	// Published records as the webhook writes them: a target with or without the statistic it
	// came from (a warming-up one included), and the requests.
	if rng.IntN(3) > 0 {
		c.annotations[names.UsageTargetAnnotation] = fmt.Sprintf("cpu=%dm,memory=%d", rng.Int64N(40_000)-8_000, rng.Int64N(64<<30)-(8<<30))
		if rng.IntN(3) > 0 {
			c.annotations[names.UsageTargetAnnotation] += "," + randomStatistic(rng)
		}
	}
	if rng.IntN(2) == 0 {
		c.annotations[names.RequestsAnnotation] = fmt.Sprintf("cpu=%dm,memory=%d", rng.Int64N(64_000), rng.Int64N(64<<30))
	}
	c.conditions = randomConditions(rng)
	c.alloc = randomList(rng)
	if rng.IntN(5) > 0 {
		c.cap = randomList(rng)
	}
	c.stored, c.storedCap = randomList(rng), randomList(rng)
	if rng.IntN(2) == 0 {
		c.stored = c.alloc.DeepCopy()
	}
	// Records: none, ours (from an earlier computation, often with its output coming back),
	// stale ones, or damaged ones.
	switch rng.IntN(6) {
	case 0:
	case 1, 2, 3:
		// The earlier write saw its own conditions: its record may carry a statistic and a hold.
		prevNode := policy.NodeFrom(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.node, Annotations: c.annotations},
			Status: corev1.NodeStatus{Allocatable: randomList(rng), Capacity: randomList(rng), Conditions: randomConditions(rng)}})
		prev := policy.Compute(policy.Input{Node: prevNode, Writer: "x"}, settings)
		if prev.RawRecord != "" {
			c.annotations[names.RawAnnotation] = prev.RawRecord
			c.annotations[names.AppliedAnnotation] = prev.AppliedRecord
			if rng.IntN(3) > 0 {
				for _, r := range policy.Resources {
					if q, ok := prev.Allocatable[r]; ok {
						c.alloc[r] = q
					}
				}
				if rng.IntN(2) == 0 {
					c.stored = c.alloc.DeepCopy()
				}
			}
		}
		if rng.IntN(4) == 0 {
			delete(c.annotations, []string{names.RawAnnotation, names.AppliedAnnotation}[rng.IntN(2)])
		}
	default:
		damaged := []string{`[]`, `{}`, `{"allocatable":{}}`, `{"allocatable":{"cpu":"1e-2000000000"}}`,
			`{"allocatable":{"cpu":"4","memory":"1Gi"}}`, `{"allocatable":{"cpu":"1.5"}}`, strings.Repeat("x", 1100),
			`{"policy":"static","allocatable":{"cpu":"4000m"}}`, `{"allocatable":{"cpu":"2"},"x":{"allocatable":{"cpu":"3"}}}`,
			`{"allocatable":{"memory":"8589934592"},"capacity":{"cpu":"9"}}`, `{"allocatable":{"cpu":"` + strings.Repeat("é", 1000) + `"}}`}
		for _, key := range []string{names.RawAnnotation, names.AppliedAnnotation} {
			if rng.IntN(3) > 0 {
				c.annotations[key] = pick(rng, damaged)
			}
		}
		if rng.IntN(2) == 0 {
			c.annotations[names.AppliedAnnotation] = pick(rng, heldRecords)
		}
	}
	return c
}

// run stores the case's starting state, sends its write as a dry run, and compares: the
// result is what policy.Compute says, the string the differences.
func (c dcase) run(admin, kubelet kubernetes.Interface) (policy.Result, string, error) {
	ctx := context.Background()
	writer := admin
	if c.kubelet {
		writer = kubelet
	}
	ann := c.annotations
	if len(ann) == 0 {
		ann = nil // as the apiserver (and the webhook) see an empty map: absent
	}
	in := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.node, Labels: map[string]string{names.EnabledLabel: names.EnabledValue}, Annotations: ann},
		Status:     corev1.NodeStatus{Allocatable: c.alloc, Capacity: c.cap, Conditions: c.conditions},
	}
	var (
		got    *corev1.Node
		stored *corev1.Node
		err    error
	)
	if c.create {
		// The kubelet may only create its own node; the create is a dry run, the name is fresh.
		if c.kubelet {
			writer = impersonateCached(names.KubeletUser(c.node))
		}
		got, err = writer.CoreV1().Nodes().Create(ctx, in, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	} else {
		stored, err = c.store(ctx, admin)
		if err != nil {
			return policy.Result{}, "", fmt.Errorf("storing the starting state: %w", err)
		}
		in.ResourceVersion = stored.ResourceVersion
		in.Labels = stored.Labels
		// A status write carries the node's spec as stored (the kubelet may not change taints).
		in.Spec = stored.Spec
		got, err = writer.CoreV1().Nodes().UpdateStatus(ctx, in, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	}
	if err != nil {
		return policy.Result{}, "", fmt.Errorf("the dry-run write failed: %w", err)
	}
	if stored != nil {
		in.Spec = stored.Spec
	}
	want, res, err := expected(in, stored, c)
	if err != nil {
		return policy.Result{}, "", err
	}
	return res, compare(want, got), nil
}

// store makes the node hold the case's stored state, without the policy: the opt-in label is
// removed while status is written, and the main resource (which the policy does not match)
// carries the label and annotations.
func (c dcase) store(ctx context.Context, cs kubernetes.Interface) (*corev1.Node, error) {
	nodes := cs.CoreV1().Nodes()
	if _, err := nodes.Get(ctx, c.node, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.node}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	// Each step re-reads the node: the node lifecycle controller writes these kubelet-less nodes
	// in reaction to ours.
	var n *corev1.Node
	step := func(what string, change func(*corev1.Node), write func(context.Context, *corev1.Node, metav1.UpdateOptions) (*corev1.Node, error)) error {
		return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			cur, err := nodes.Get(ctx, c.node, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(cur)
			if n, err = write(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
	}
	if err := step("updating", func(n *corev1.Node) { n.Labels, n.Annotations = map[string]string{}, c.annotations }, nodes.Update); err != nil {
		return nil, err
	}
	if err := step("updating status", func(n *corev1.Node) { n.Status.Allocatable, n.Status.Capacity = c.stored, c.storedCap }, nodes.UpdateStatus); err != nil {
		return nil, err
	}
	if err := step("opting in", func(n *corev1.Node) { n.Labels = map[string]string{names.EnabledLabel: names.EnabledValue} }, nodes.Update); err != nil {
		return nil, err
	}
	return n, nil
}

// expected is the webhook's answer applied to the write, as the apiserver would store it.
func expected(in, stored *corev1.Node, c dcase) (*corev1.Node, policy.Result, error) {
	writer := "kubernetes-admin"
	if c.kubelet {
		writer = names.KubeletUser(c.node)
	}
	// The apiserver decodes what it is sent and hands admission its canonical spelling
	// ("47668896000" arrives as "47668896k", also when the case built it as BinarySI); the
	// records keep the spelling they see. A JSON round trip does the same.
	in = in.DeepCopy()
	for _, l := range []corev1.ResourceList{in.Status.Allocatable, in.Status.Capacity} {
		for k, q := range l {
			var back resource.Quantity
			b, err := json.Marshal(q)
			if err == nil {
				err = json.Unmarshal(b, &back)
			}
			if err != nil {
				return nil, policy.Result{}, fmt.Errorf("%s %s: %w", k, q.String(), err)
			}
			l[k] = back
		}
	}
	input := policy.Input{Node: policy.NodeFrom(in), Writer: writer}
	if stored != nil {
		input.Update, input.OldAllocatable = true, stored.Status.Allocatable
	}
	res := policy.Compute(input, settings)
	ops, err := nodepatch.Operations(input.Node, res)
	if err != nil {
		return nil, policy.Result{}, err
	}
	patch, err := nodepatch.Marshal(ops)
	if err != nil {
		return nil, policy.Result{}, err
	}
	doc, err := json.Marshal(in)
	if err != nil {
		return nil, policy.Result{}, err
	}
	p, err := evanjsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, policy.Result{}, err
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, policy.Result{}, fmt.Errorf("applying %s: %w", patch, err)
	}
	var n corev1.Node
	return &n, res, json.Unmarshal(out, &n)
}

func compare(want, got *corev1.Node) string {
	var b strings.Builder
	for _, l := range []struct {
		name      string
		want, got corev1.ResourceList
	}{{"allocatable", want.Status.Allocatable, got.Status.Allocatable}, {"capacity", want.Status.Capacity, got.Status.Capacity}} {
		for _, r := range policy.Resources {
			w, wok := l.want[r]
			g, gok := l.got[r]
			if wok != gok || (wok && w.Cmp(g) != 0) {
				fmt.Fprintf(&b, "\n  %s/%s: want %s (%v), stored %s (%v)", l.name, r, w.String(), wok, g.String(), gok)
			}
		}
	}
	for _, key := range []string{names.RawAnnotation, names.AppliedAnnotation} {
		w, wok := want.Annotations[key]
		g, gok := got.Annotations[key]
		if wok != gok || w != g {
			fmt.Fprintf(&b, "\n  %s: want %.200q (%v), stored %.200q (%v)", key, w, wok, g, gok)
		}
	}
	return b.String()
}

var (
	clientsMu sync.Mutex
	clients   = map[string]kubernetes.Interface{}
)

func impersonate(t testing.TB, user string) kubernetes.Interface {
	t.Helper()
	return impersonateCached(user)
}

// impersonateCached returns an admin client acting as user (in system:nodes, like a kubelet).
func impersonateCached(user string) kubernetes.Interface {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[user]; ok {
		return c
	}
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:nodes", "system:authenticated"}}
	c := kubernetes.NewForConfigOrDie(cfg)
	clients[user] = c
	return c
}
