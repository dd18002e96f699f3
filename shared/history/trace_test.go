package history

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// A synthetic day of NodeMetrics samples for the replay benchmark (replay_test.go): per node a
// daily cycle, slow wander, noise, short bursts and, on some nodes, a memory leak that a restart
// ends. Deterministic: each node draws from its own seeded generator.

const (
	tracePoll  = 15 * time.Second
	traceSteps = int(24 * time.Hour / tracePoll) // 5760
	traceSeed  = 14
)

// traceStart is a midnight, so that the day holds one whole daily cycle.
var traceStart = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// traceNode is one node's day: raw allocatable, capacity and its pods' requests (constant: the
// pods stay, their usage moves), and usage at every step, in millicores and bytes.
type traceNode struct {
	name                           string
	capCPU, capMem, rawCPU, rawMem int64
	reqCPU, reqMem                 int64
	cpu, mem                       []int64
	leaks                          bool
}

// wave is a daily cycle, a slow random wander and white noise around a mean, all relative.
type wave struct {
	amp, peak   float64 // relative amplitude; hour of the daily maximum
	wander, rho float64 // AR(1) state and its step's standard deviation
	noise       float64 // relative standard deviation of white noise
}

const arCoeff = 0.98 // the wander's memory: about 12 minutes at a 15 s poll

func newWave(r *rand.Rand, amp, peak, wander, noise float64) wave {
	return wave{amp: amp, peak: peak, rho: wander * math.Sqrt(1-arCoeff*arCoeff), noise: noise,
		wander: r.NormFloat64() * wander}
}

// at is the relative level at hour h (1 is the mean).
func (w *wave) at(r *rand.Rand, h float64) float64 {
	w.wander = arCoeff*w.wander + r.NormFloat64()*w.rho
	return 1 + w.amp*math.Cos(2*math.Pi*(h-w.peak)/24) + w.wander + r.NormFloat64()*w.noise
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

// makeTrace draws node i's day.
func makeTrace(i int) traceNode {
	r := rand.New(rand.NewPCG(traceSeed, uint64(i)))
	cores, gib := int64(8), int64(32)
	switch s := r.IntN(10); {
	case s < 1:
		cores, gib = 4, 16
	case s >= 7:
		cores, gib = 16, 64
	}
	n := traceNode{name: "node-" + strconv.Itoa(i), capCPU: cores * 1000, capMem: gib << 30,
		rawCPU: cores*1000 - 100, rawMem: (gib - 1) << 30}
	n.reqCPU = int64(float64(n.rawCPU) * uniform(r, 0.85, 0.95))
	n.reqMem = int64(float64(n.rawMem) * uniform(r, 0.85, 0.95))

	// Pods use 30-60% of their cpu requests on average and 50-80% of their memory; the daily
	// cycle peaks in the afternoon, an hour and a half either way from node to node.
	peak := 14 + 1.5*r.NormFloat64()
	meanCPU := float64(n.reqCPU) * uniform(r, 0.3, 0.6)
	meanMem := float64(n.reqMem) * uniform(r, 0.5, 0.8)
	cpuWave := newWave(r, uniform(r, 0.2, 0.5), peak, 0.06, 0.05)
	memWave := newWave(r, uniform(r, 0.02, 0.08), peak, 0.02, 0.005)

	// Bursts start 0.5 to 2 times an hour and last 1 to 5 minutes: cpu jumps by 15-50% of the
	// node, memory by 3-12% in half of them.
	burstRate := uniform(r, 0.5, 2) * tracePoll.Hours()
	var burstLeft int
	var burstCPU, burstMem float64

	// One node in seven leaks memory: 15-30% of the node over 3 to 10 hours, then restarts.
	var leak, leakPeriod, leakPhase float64
	if n.leaks = r.IntN(7) == 0; n.leaks {
		leak, leakPeriod = float64(n.rawMem)*uniform(r, 0.15, 0.3), uniform(r, 3, 10)
		leakPhase = r.Float64() * leakPeriod
	}

	n.cpu, n.mem = make([]int64, traceSteps), make([]int64, traceSteps)
	for k := range traceSteps {
		h := float64(k) * tracePoll.Hours()
		if burstLeft == 0 && r.Float64() < burstRate {
			burstLeft = 4 + r.IntN(17)
			burstCPU, burstMem = float64(n.rawCPU)*uniform(r, 0.15, 0.5), 0
			if r.IntN(2) == 0 {
				burstMem = float64(n.rawMem) * uniform(r, 0.03, 0.12)
			}
		}
		cpu, mem := meanCPU*cpuWave.at(r, h), meanMem*memWave.at(r, h)
		if burstLeft > 0 {
			burstLeft--
			cpu, mem = cpu+burstCPU, mem+burstMem
		}
		if leak > 0 {
			mem += leak * math.Mod(h+leakPhase, leakPeriod) / leakPeriod
		}
		// metrics-server's units: cpu rounded up to millicores, memory in KiB.
		n.cpu[k] = clamp(int64(math.Ceil(cpu)), 10, n.capCPU)
		n.mem[k] = clamp(int64(math.Ceil(mem/1024))*1024, 64<<20, n.capMem)
	}
	return n
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
