// Package gcfloor gives the garbage collector a minimum allowance of new allocation between
// cycles.
//
// With GOGC=100 the next collection starts when the heap has grown by as much as is live. A
// webhook with small caches has a few megabytes live and allocates about 15 KB per review, so at
// 2,000 reviews per second it collected ten times a second, and those cycles (assists, the
// write barrier, two short pauses) were a sixth of its tail latency. With 150,000 pods cached the
// live heap is large and GOGC=100 already leaves room, which is where the memory target is. So
// GOGC is raised only while the live heap is small: the allowance is max(live, floor).
package gcfloor

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Percent is the GOGC value that lets the heap grow by at least floor bytes between cycles, and
// never less than base. GOGC applies to the live heap plus the GC roots (goroutine stacks and
// globals), so scanned is their sum.
func Percent(scanned, floor uint64, base int) int {
	if scanned == 0 || floor == 0 {
		return base
	}
	p := floor * 100 / scanned
	if p > 10_000 { // a nearly empty heap; keep cycles bounded anyway
		p = 10_000
	}
	return max(base, int(p))
}

// What GOGC is a percentage of (Go 1.21 and later).
var scanned = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Run re-reads the live heap every interval and sets GOGC from it until ctx ends. base is the
// GOGC to keep once the live heap exceeds the floor (normally 100).
func Run(ctx context.Context, floor uint64, base int, interval time.Duration, log *slog.Logger) {
	samples := make([]metrics.Sample, len(scanned))
	for i, name := range scanned {
		samples[i].Name = name
	}
	current := base
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		metrics.Read(samples)
		var sum uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				sum += s.Value.Uint64()
			}
		}
		// Before the first cycle the live heap reads 0 and the runtime's first goal is 4 MB times
		// GOGC/100: raising GOGC then would let the heap grow to hundreds of megabytes.
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[0].Value.Uint64() == 0 {
			sum = 0
		}
		if p := Percent(sum, floor, base); changed(current, p) {
			debug.SetGCPercent(p)
			log.Debug("GOGC adjusted to the live heap", "gogc", p, "scannedBytes", sum)
			current = p
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// changed ignores moves under a tenth: SetGCPercent is not free, and the live heap of a busy
// webhook wobbles from one cycle to the next.
func changed(cur, next int) bool {
	d := next - cur
	if d < 0 {
		d = -d
	}
	return d*10 > cur
}
