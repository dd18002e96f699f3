package gcfloor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name           string
		scanned, floor uint64
		base, want     int
	}{
		{"small heap raised", 4 * mib, 32 * mib, 100, 800},
		{"heap at the floor", 32 * mib, 32 * mib, 100, 100},
		{"large heap keeps base", 64 * mib, 32 * mib, 100, 100},
		{"base above the floor's percent", 16 * mib, 32 * mib, 300, 300},
		{"disabled", 4 * mib, 0, 100, 100},
		{"nothing live yet", 0, 32 * mib, 100, 100},
		{"nearly empty heap capped", 1024, 32 * mib, 100, 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Percent(tt.scanned, tt.floor, tt.base)); diff != "" {
				t.Errorf("Percent(%d, %d, %d) (-want +got):\n%s", tt.scanned, tt.floor, tt.base, diff)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	for _, tt := range []struct {
		cur, next int
		want      bool
	}{{100, 100, false}, {100, 109, false}, {100, 111, true}, {800, 700, true}, {800, 750, false}} {
		if got := changed(tt.cur, tt.next); got != tt.want {
			t.Errorf("changed(%d, %d) = %v, want %v", tt.cur, tt.next, got, tt.want)
		}
	}
}
