package main

import (
	"log/slog"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApplyMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int64 // the limit set; 0 for none
	}{
		{"the Deployment's 512Mi", map[string]string{"MEMORY_LIMIT": "536870912"}, 536870912 - 53687091},
		{"90% of 100 bytes", map[string]string{"MEMORY_LIMIT": "100"}, 90},
		{"no overflow near the int64 maximum", map[string]string{"MEMORY_LIMIT": "9223372036854775807"}, math.MaxInt64 - math.MaxInt64/10},
		{"GOMEMLIMIT wins", map[string]string{"MEMORY_LIMIT": "536870912", "GOMEMLIMIT": "100MiB"}, 0},
		{"empty GOMEMLIMIT is unset", map[string]string{"MEMORY_LIMIT": "1000", "GOMEMLIMIT": ""}, 900},
		{"unset", map[string]string{}, 0},
		{"empty", map[string]string{"MEMORY_LIMIT": ""}, 0},
		{"quantity spelling", map[string]string{"MEMORY_LIMIT": "512Mi"}, 0},
		{"zero", map[string]string{"MEMORY_LIMIT": "0"}, 0},
		{"negative", map[string]string{"MEMORY_LIMIT": "-5"}, 0},
		{"overflowing", map[string]string{"MEMORY_LIMIT": "99999999999999999999"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []int64
			got := applyMemoryLimit(slog.New(slog.DiscardHandler), func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
			}, func(n int64) int64 { calls = append(calls, n); return 0 })
			if got != tc.want {
				t.Errorf("applyMemoryLimit = %d, want %d", got, tc.want)
			}
			var want []int64
			if tc.want != 0 {
				want = []int64{tc.want}
			}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("SetMemoryLimit calls (-want +got):\n%s", diff)
			}
		})
	}
}
