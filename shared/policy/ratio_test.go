package policy

import (
	"math"
	"testing"
)

func TestParseRatio(t *testing.T) {
	tests := []struct {
		in      string
		want    Ratio
		wantErr bool
	}{
		{in: "1", want: One},
		{in: "2", want: 2 * One},
		{in: "1.5", want: 1_500_000},
		{in: "01.50", want: 1_500_000},
		{in: "1.3333339", want: 1_333_333}, // truncated at six places
		{in: "0.0000001", want: 0},
		{in: "0", want: 0},
		{in: "999999.999999999999", want: 999_999_999_999},
		// Only the plain spelling: what CEL matches with the same pattern.
		{in: " 1.25 ", wantErr: true},
		{in: "+3", wantErr: true},
		{in: ".5", wantErr: true},
		{in: "2.", wantErr: true},
		{in: "1e1", wantErr: true},
		{in: "1e9", wantErr: true},
		{in: "1000000", wantErr: true},
		{in: "1.0000000000000", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: ".", wantErr: true},
		{in: "1.5x", wantErr: true},
		{in: "1,5", wantErr: true},
		{in: "500m", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "1.5\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRatio(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRatio(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("ParseRatio(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestRatioString(t *testing.T) {
	for in, want := range map[Ratio]string{One: "1", 1_500_000: "1.5", 1_333_333: "1.333333", 0: "0", -One: "-1", 200_000: "0.2"} {
		if got := in.String(); got != want {
			t.Errorf("Ratio(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestMulDiv(t *testing.T) {
	tests := []struct {
		name string
		v    int64
		r    Ratio
		down int64
		up   int64
	}{
		{"exact", 3900, 2 * One, 7800, 7800},
		{"rounds", 1001, 1_500_000, 1501, 1502},
		{"big memory", 1 << 50, 4 * One, 1 << 52, 1 << 52},
		{"largest amount at the largest ratio", MaxAmount, MaxRatio, MaxAmount * 100, MaxAmount * 100},
		{"saturates", math.MaxInt64, 4 * One, math.MaxInt64, math.MaxInt64},
		{"zero", 0, 2 * One, 0, 0},
		{"negative", -5, 2 * One, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mulFloor(tt.v, tt.r); got != tt.down {
				t.Errorf("mulFloor = %d, want %d", got, tt.down)
			}
			if got := mulCeil(tt.v, tt.r); got != tt.up {
				t.Errorf("mulCeil = %d, want %d", got, tt.up)
			}
		})
	}
}

func FuzzParseRatio(f *testing.F) {
	for _, s := range []string{"1", "1.5", "1e9", "-1", "abc", "0.0000001", "999999.999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRatio(s)
		if err != nil {
			return
		}
		if r < 0 || r >= 1_000_000*One {
			t.Fatalf("ParseRatio(%q) = %d, outside [0, 1e6)", s, r)
		}
		// The printed form parses back to the same value.
		if back, err := ParseRatio(r.String()); err != nil || back != r {
			t.Fatalf("round trip of %q: %s -> %d, %v", s, r, back, err)
		}
	})
}
