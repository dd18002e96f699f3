package history

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReplayNode checks the replay's bookkeeping on four samples worked out by hand. Raw cpu
// 1000m, requests 900m, ratio 2: instantaneous A' = clamp(1000 + 900 - 1.2 U, 1000, 2000).
func TestReplayNode(t *testing.T) {
	n := traceNode{name: "node-0", capCPU: 1100, capMem: 2 << 30, rawCPU: 1000, rawMem: 1 << 30,
		reqCPU: 900, reqMem: 900 << 20,
		// A' = 1780, 1780, 1300, 1000 (usage 1000 leaves nothing to reclaim)
		cpu: []int64{100, 100, 500, 1000},
		// constant usage above requests: memory is never overcommitted
		mem: []int64{1 << 30, 1 << 30, 1 << 30, 1 << 30},
	}
	ahead := [2][]int64{maxAhead(n.cpu, 2), maxAhead(n.mem, 2)}
	if diff := cmp.Diff([]int64{500, 1000, 1000, 0}, ahead[0]); diff != "" {
		t.Errorf("maxAhead (-want +got):\n%s", diff)
	}
	got, err := replayNode(&n, ahead, replayMode{name: "instantaneous"})
	if err != nil {
		t.Fatal(err)
	}
	want := tally{
		samples: 4, hours: 4 * tracePoll.Hours(),
		gained: [2]float64{(780 + 780 + 300 + 0) / 1000.0, 0},
		// k=0: next 100 + room 880 fits, within two samples 500 + 880 does not; k=1: 500 + 880
		// does not; k=2: 1000 + 400 does not.
		over:        [2]int{3, 0},
		exceed:      [2]int{2, 0},
		exceedAhead: [2]int{3, 0},
		changes:     [2]int{2, 0},
		downs:       [2]int{2, 0},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(tally{})); diff != "" {
		t.Errorf("tally (-want +got):\n%s", diff)
	}
}
