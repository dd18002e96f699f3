package history

import (
	"testing"
	"time"
	"unsafe"
)

// TestBounded feeds a node far more often than any metrics poll: its samples stay within
// MaxSamples and its window still covers the configured span.
func TestBounded(t *testing.T) {
	tests := []struct {
		name       string
		window     time.Duration
		every      time.Duration
		for_       time.Duration
		maxSamples int
		minSpan    time.Duration
	}{
		// At the usual poll the window holds every sample of the hour: 3600/15 + 1.
		{"1h at 15s", time.Hour, 15 * time.Second, 2 * time.Hour, 241, time.Hour},
		// Faster than MinSpacing: samples merge into one per 5 s.
		{"1h at 1s", time.Hour, time.Second, 2 * time.Hour, 722, time.Hour - 5*time.Second},
		// A day at 15 s would be 5761 samples; they merge into one per 85 s instead.
		{"24h at 15s", 24 * time.Hour, 15 * time.Second, 26 * time.Hour, MaxSamples, 24*time.Hour - 85*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Window = tt.window
			var n Node
			for at := time.Duration(0); at <= tt.for_; at += tt.every {
				n.Observe(c, t0.Add(at), 100, 1<<30)
				if n.count > tt.maxSamples || len(n.ring) > MaxSamples {
					t.Fatalf("after %s: %d samples in a ring of %d, want at most %d", at, n.count, len(n.ring), tt.maxSamples)
				}
			}
			st, _, _ := n.Usage(c)
			if st.Window < tt.minSpan || st.Window > tt.window {
				t.Errorf("window spans %s, want %s to %s", st.Window, tt.minSpan, tt.window)
			}
			if st.Samples != n.count {
				t.Errorf("Usage reports %d samples, the node holds %d", st.Samples, n.count)
			}
		})
	}
}

// TestFootprint is the memory a node costs with the default config at a 15 s poll: its struct
// and a ring grown to the next size up from 241 samples.
func TestFootprint(t *testing.T) {
	c := DefaultConfig()
	var n Node
	for i := range 2 * 241 {
		n.Observe(c, t0.Add(time.Duration(i)*15*time.Second), int64(i), int64(i)<<20)
	}
	bytes := int(unsafe.Sizeof(n)) + cap(n.ring)*int(unsafe.Sizeof(sample{}))
	if unsafe.Sizeof(sample{}) != 12 || bytes > 3200 {
		t.Errorf("a sample is %d bytes, a node %d (ring of %d), want 12 and at most 3200", unsafe.Sizeof(sample{}), bytes, cap(n.ring))
	}
	t.Logf("%d bytes per node (ring of %d samples); %.1f MiB for 5,000 nodes", bytes, cap(n.ring), float64(5000*bytes)/(1<<20))
}

// TestObserveAllocs: once a node's ring has grown, observing allocates nothing.
func TestObserveAllocs(t *testing.T) {
	c := DefaultConfig()
	var n Node
	at := t0
	for range 300 {
		at = at.Add(15 * time.Second)
		n.Observe(c, at, 100, 1<<30)
	}
	allocs := testing.AllocsPerRun(100, func() {
		at = at.Add(15 * time.Second)
		n.Observe(c, at, 100, 1<<30)
		n.Usage(c)
	})
	if allocs != 0 {
		t.Errorf("Observe and Usage allocate %v times per sample, want 0", allocs)
	}
}
