package policy

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// invariants lists what res breaks of the promises Compute makes for any input, checked with
// exact rational arithmetic rather than the policy's own integer code:
//   - only cpu and memory change, and no resource appears in a list or disappears from it;
//   - a changed allocatable lies in [base, max ratio x base], where the base is the incoming
//     value or the raw record (so it is never negative, and never zero unless the base is);
//   - a changed capacity moves by exactly what allocatable moved from the same base;
//   - the base is the incoming lists or what the raw record says, nothing else;
//   - Keep stores the input as it arrived.
func invariants(in Input, s Settings, res Result) []string {
	var bad []string
	badf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	lists := []struct {
		name    string
		in, out corev1.ResourceList
		base    corev1.ResourceList
	}{
		{"allocatable", in.Node.Allocatable, res.Allocatable, res.Raw.Allocatable},
		{"capacity", in.Node.Capacity, res.Capacity, res.Raw.Capacity},
	}
	for _, l := range lists {
		for k := range l.out {
			if _, ok := l.in[k]; !ok {
				badf("%s/%s appeared", l.name, k)
			}
		}
		for k, q := range l.in {
			o, ok := l.out[k]
			switch {
			case !ok:
				badf("%s/%s disappeared", l.name, k)
			case o.Cmp(q) == 0:
			case res.Keep:
				badf("Keep, but %s/%s changed from %s to %s", l.name, k, q.String(), o.String())
			case k != corev1.ResourceCPU && k != corev1.ResourceMemory:
				badf("%s/%s changed from %s to %s: only cpu and memory may change", l.name, k, q.String(), o.String())
			}
		}
	}
	if res.Keep {
		return bad
	}
	incoming := snapshot(in.Node.Allocatable, in.Node.Capacity)
	if !sameSnapshot(res.Raw, incoming) {
		rec, err := ParseRaw(in.Node.Annotations[names.RawAnnotation])
		if err != nil || !sameSnapshot(res.Raw, rec) {
			badf("base %v is neither the incoming lists %v nor the raw record (%v)", res.Raw, incoming, err)
		}
	}
	for _, name := range Resources {
		inA, hadA := in.Node.Allocatable[name]
		outA := res.Allocatable[name]
		if !hadA || outA.Cmp(inA) == 0 {
			// Unchanged allocatable: capacity may still move back from our own output to the
			// base's, which the capacity rule below checks.
			checkCapacity(name, in, res, badf)
			continue
		}
		baseQ, ok := res.Raw.Allocatable[name]
		if !ok {
			badf("allocatable/%s changed from %s to %s without a base", name, inA.String(), outA.String())
			continue
		}
		b, o := rat(baseQ), rat(outA)
		limit := s.CPU.Max
		if name == corev1.ResourceMemory {
			limit = s.Memory.Max
		}
		ceiling := new(big.Rat).Mul(b, big.NewRat(int64(limit), int64(One)))
		switch {
		case o.Sign() < 0:
			badf("allocatable/%s is negative: %s (base %s)", name, outA.String(), baseQ.String())
		case o.Sign() == 0 && b.Sign() != 0:
			badf("allocatable/%s is zero (base %s)", name, baseQ.String())
		case o.Cmp(b) < 0:
			badf("allocatable/%s %s is below its base %s", name, outA.String(), baseQ.String())
		case o.Cmp(ceiling) > 0:
			badf("allocatable/%s %s is above the max ratio %s x its base %s", name, outA.String(), limit, baseQ.String())
		}
		checkCapacity(name, in, res, badf)
	}
	return bad
}

// checkCapacity: a capacity that changed moved by exactly what allocatable moved from the base,
// and is not negative.
func checkCapacity(name corev1.ResourceName, in Input, res Result, badf func(string, ...any)) {
	inC, hadC := in.Node.Capacity[name]
	outC := res.Capacity[name]
	if !hadC || outC.Cmp(inC) == 0 {
		return
	}
	baseC, okC := res.Raw.Capacity[name]
	baseA, okA := res.Raw.Allocatable[name]
	outA, okO := res.Allocatable[name]
	if !okC || !okA || !okO {
		badf("capacity/%s changed from %s to %s without a base", name, inC.String(), outC.String())
		return
	}
	moved := new(big.Rat).Sub(rat(outC), rat(baseC))
	want := new(big.Rat).Sub(rat(outA), rat(baseA))
	if moved.Cmp(want) != 0 {
		badf("capacity/%s moved by %s from its base %s, allocatable by %s", name, moved.RatString(), baseC.String(), want.RatString())
	}
	if outC.Sign() < 0 {
		badf("capacity/%s is negative: %s", name, outC.String())
	}
}

// rat is q exactly. Only for quantities that are already held: it formats the value, and the
// values tests give are bounded.
func rat(q resource.Quantity) *big.Rat {
	r, ok := new(big.Rat).SetString(q.AsDec().String())
	if !ok {
		panic("unreadable decimal " + q.AsDec().String())
	}
	return r
}

func sameSnapshot(a, b Snapshot) bool {
	return sameResources(a.Allocatable, b.Allocatable) && sameResources(a.Capacity, b.Capacity)
}

// fingerprint is everything Compute returns, as comparable text.
func fingerprint(r Result) string {
	var parts []string
	for _, l := range []struct {
		name string
		l    corev1.ResourceList
	}{{"alloc", r.Allocatable}, {"cap", r.Capacity}, {"rawAlloc", r.Raw.Allocatable}, {"rawCap", r.Raw.Capacity}} {
		for k, q := range l.l {
			parts = append(parts, l.name+"/"+string(k)+"="+q.String())
		}
	}
	sort.Strings(parts)
	return fmt.Sprintf("%s\nraw=%s\napplied=%s\nreason=%s\nwarnings=%q\nfallback=%v keep=%v",
		strings.Join(parts, " "), r.RawRecord, r.AppliedRecord, r.Reason, r.Warnings, r.Fallback, r.Keep)
}
