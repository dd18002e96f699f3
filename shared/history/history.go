package history

import (
	"math"
	"slices"
	"time"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

const (
	// MaxSamples bounds the samples a node keeps, whatever the window and however often
	// samples arrive: 12 KiB per node at most.
	MaxSamples = 1024
	// MinSpacing is the least time between two samples a node keeps; samples closer than that
	// (or than Window/(MaxSamples-2), for long windows) are merged into one by their maximum, so
	// a metrics source polled faster than expected cannot grow memory or shorten the window.
	MinSpacing = 5 * time.Second

	mib = 1 << 20
)

// sample is one usage sample in 12 bytes: Unix seconds (until 2106), millicores (up to about 4.29
// million cores) and MiB rounded up (up to 4 PiB). Larger values saturate at the maximum.
type sample struct {
	at, cpu, mem uint32
}

// Node is one node's window and hysteresis state. Its zero value is an empty window. It is not
// safe for concurrent use: the caller locks it.
type Node struct {
	ring        []sample // a ring of count samples from head, oldest first; grows up to limit
	head, count int
	bucket      uint32 // when the newest sample's spacing period began (see MinSpacing)
	cpu, mem    held
}

// held is one resource's statistic after hysteresis, in the unit of its samples.
type held struct {
	value uint32
	// While pending, the statistic has been lower than value by more than the step at every
	// sample since since; lower is the highest statistic seen in that time.
	pending      bool
	since, lower uint32
}

// Observe adds a sample taken at at: cpuMilli millicores, memBytes bytes. A sample not newer than
// the newest (by whole seconds) is ignored, as is one outside 1970 to 2106. Samples older than
// c.Window (measured from the newest) drop out. A value that does not fit (above about 4.29
// million cores or 4 PiB) or is negative counts as the largest that does: it can only lower what
// the policy hands out. Once the window is full, Observe allocates nothing.
func (n *Node) Observe(c Config, at time.Time, cpuMilli, memBytes int64) {
	sec := at.Unix()
	if sec < 0 || sec > math.MaxUint32 {
		return
	}
	now := uint32(sec)
	cpu, mem := saturate(cpuMilli), saturate(mibUp(memBytes))
	window, spacing := windowSeconds(c)
	switch newest := n.newest(); {
	case newest != nil && now <= newest.at:
		return
	case newest != nil && int64(now)-int64(n.bucket) < spacing:
		newest.at, newest.cpu, newest.mem = now, max(newest.cpu, cpu), max(newest.mem, mem)
	default:
		n.push(sample{now, cpu, mem}, max(1, min(MaxSamples, int(window/spacing)+2)))
		n.bucket = now
	}
	for cutoff := int64(now) - window; n.count > 1 && int64(n.ring[n.head].at) < cutoff; {
		n.drop()
	}
	n.advance(c, now)
}

// Usage is the statistic after hysteresis as of the newest sample, and that sample's time; ok is
// false with no samples. It computes nothing: Observe advanced the state.
func (n *Node) Usage(c Config) (policy.Statistic, time.Time, bool) {
	if n.count == 0 {
		return policy.Statistic{}, time.Time{}, false
	}
	oldest, newest := n.ring[n.head], *n.newest()
	span := time.Duration(newest.at-oldest.at) * time.Second
	return policy.Statistic{
		CPUPercentile:    c.CPUPercentile,
		MemoryPercentile: c.MemoryPercentile,
		CPU:              int64(n.cpu.value),
		Memory:           int64(n.mem.value) * mib,
		Window:           span,
		Samples:          n.count,
		WarmingUp:        span < c.MinWindow,
	}, time.Unix(int64(newest.at), 0), true
}

// advance moves both resources' hysteresis to the window's statistic as of now.
func (n *Node) advance(c Config, now uint32) {
	// Up to MaxSamples values on the stack: no allocation, and nothing a Node has to carry.
	var scratch [MaxSamples]uint32
	vals := scratch[:0]
	older, newer := n.samples()
	for _, s := range older {
		vals = append(vals, s.cpu)
	}
	for _, s := range newer {
		vals = append(vals, s.cpu)
	}
	raiseAfter := int64(c.RaiseAfter / time.Second)
	n.cpu.advance(percentile(vals, c.CPUPercentile), now, c.CPUStep, raiseAfter)
	vals = vals[:0]
	for _, s := range older {
		vals = append(vals, s.mem)
	}
	for _, s := range newer {
		vals = append(vals, s.mem)
	}
	n.mem.advance(percentile(vals, c.MemoryPercentile), now, mibUp(c.MemoryStep), raiseAfter)
}

// samples is the window in two runs of the ring, oldest first.
func (n *Node) samples() (older, newer []sample) {
	if end := n.head + n.count; end > len(n.ring) {
		return n.ring[n.head:], n.ring[:end-len(n.ring)]
	}
	return n.ring[n.head : n.head+n.count], nil
}

// advance applies one statistic: at or above the held value it is taken at once (allocatable
// falls at once); within step below it the held value stays; lower than that for raiseAfter
// seconds running, the held value becomes the highest statistic seen in that time.
//
// The zero held value is below any statistic, so the first sample is taken as it is.
func (h *held) advance(stat, now uint32, step, raiseAfter int64) {
	switch {
	case stat >= h.value:
		h.value, h.pending = stat, false
	case int64(stat) >= int64(h.value)-step:
		h.pending = false
	case !h.pending:
		h.pending, h.since, h.lower = true, now, stat
	default:
		h.lower = max(h.lower, stat)
	}
	if h.pending && int64(now)-int64(h.since) >= raiseAfter {
		h.value, h.pending = h.lower, false
	}
}

// percentile is the nearest-rank p-th percentile of vals (p in 1..100, vals not empty): the
// value at rank ceil(p% of len(vals)) in ascending order. It reorders vals. It runs once per
// sample, so it keeps only the k values beyond the rank in a heap instead of sorting all of them:
// O(n log k), with k = 13 for the p95 of 241 samples.
func percentile(vals []uint32, p int) uint32 {
	if p >= 100 {
		return slices.Max(vals)
	}
	rank := max((p*len(vals)+99)/100, 1)
	if k := len(vals) - rank + 1; k <= rank {
		return kthLargest(vals, k)
	}
	// The rank-th smallest is the rank-th largest of the values turned upside down.
	for i := range vals {
		vals[i] = ^vals[i]
	}
	return ^kthLargest(vals, rank)
}

// kthLargest is the k-th largest of vals (1 <= k <= len(vals)), kept in a min-heap in vals[:k].
func kthLargest(vals []uint32, k int) uint32 {
	h := vals[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for _, v := range vals[k:] {
		if v > h[0] {
			h[0] = v
			siftDown(h, 0)
		}
	}
	return h[0]
}

// siftDown restores the min-heap h below i.
func siftDown(h []uint32, i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(h) && h[l] < h[least] {
			least = l
		}
		if r := 2*i + 2; r < len(h) && h[r] < h[least] {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

// push appends s, growing the ring up to limit samples and dropping the oldest beyond it.
func (n *Node) push(s sample, limit int) {
	for n.count >= limit {
		n.drop()
	}
	if n.count == len(n.ring) {
		grown := make([]sample, min(limit, max(16, 2*len(n.ring))))
		older, newer := n.samples()
		copy(grown[copy(grown, older):], newer)
		n.ring, n.head = grown, 0
	}
	n.ring[n.index(n.count)] = s
	n.count++
}

// newest is the newest sample, nil with none.
func (n *Node) newest() *sample {
	if n.count == 0 {
		return nil
	}
	return &n.ring[n.index(n.count-1)]
}

func (n *Node) drop() {
	n.head = (n.head + 1) % len(n.ring)
	n.count--
}

// index is the ring position of the i-th sample, oldest first.
func (n *Node) index(i int) int {
	return (n.head + i) % len(n.ring)
}

// windowSeconds is the window and the spacing of kept samples in seconds: MinSpacing, or more for
// a window MaxSamples samples cannot cover at MinSpacing.
func windowSeconds(c Config) (window, spacing int64) {
	window = int64(c.Window / time.Second)
	spacing = max(int64(MinSpacing/time.Second), (window+MaxSamples-3)/(MaxSamples-2))
	return window, spacing
}

// mibUp is v bytes in MiB, rounded up: usage rounded up is reclaimed less, never more.
func mibUp(v int64) int64 {
	if v <= 0 {
		return v
	}
	return v/mib + min(v%mib, 1)
}

// saturate is v as a sample value: negative or too large becomes the largest.
func saturate(v int64) uint32 {
	if v < 0 || v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}
