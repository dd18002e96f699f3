package policy

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
)

// Ratio is a non-negative decimal held exactly as millionths, so "1.5" is 1_500_000. Ratios and the
// usage margin use it; results are computed from it with integer math only.
type Ratio int64

// One is the ratio 1.0: no overcommit.
const One Ratio = 1_000_000

// MaxRatio is the largest ratio a setting may allow (see MaxAmount for why there is a cap).
const MaxRatio Ratio = 100 * One

// RatioPattern is the only spelling of a ratio accepted anywhere (annotations, settings, flags):
// plain decimal digits, at most six before the point and twelve after; digits past the sixth
// decimal place are dropped. The CEL of policy mode parses ratios with the same pattern, so both
// modes agree on every string, and nothing unbounded reaches a parser.
const RatioPattern = `^[0-9]{1,6}([.][0-9]{1,12})?$`

// MaxRatioLength is the longest string RatioPattern matches; longer ones are refused before the
// pattern runs.
const MaxRatioLength = 6 + 1 + 12

var (
	ratioRE       = regexp.MustCompile(RatioPattern)
	errNotDecimal = errors.New("not a decimal number")
)

// ParseRatio parses a ratio spelled as RatioPattern says, exactly, as millionths.
func ParseRatio(s string) (Ratio, error) {
	if len(s) > MaxRatioLength || !ratioRE.MatchString(s) {
		return 0, errNotDecimal
	}
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, errNotDecimal
	}
	f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err != nil {
		return 0, errNotDecimal
	}
	return Ratio(w)*One + Ratio(f), nil
}

// MustParseRatio is ParseRatio for constants known to be valid.
func MustParseRatio(s string) Ratio {
	r, err := ParseRatio(s)
	if err != nil {
		panic(fmt.Sprintf("invalid ratio %q: %v", s, err))
	}
	return r
}

// String prints the shortest exact decimal: "2", "1.5", "1.333333".
func (r Ratio) String() string {
	sign := ""
	if r < 0 {
		sign, r = "-", -r
	}
	whole, frac := int64(r/One), int64(r%One)
	if frac == 0 {
		return sign + strconv.FormatInt(whole, 10)
	}
	f := strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	return sign + strconv.FormatInt(whole, 10) + "." + f
}

// Set and Type make Ratio a pflag.Value, so flags take ratios in the same syntax as annotations.
func (r *Ratio) Set(s string) error {
	v, err := ParseRatio(s)
	if err != nil {
		return fmt.Errorf("invalid ratio %q: %w", s, err)
	}
	*r = v
	return nil
}

// Type names the flag's value type in --help.
func (r *Ratio) Type() string { return "ratio" }

// mulFloor returns floor(v * r) for v >= 0 without overflow, saturating at MaxInt64.
// Of is floor(v * r), as the policy multiplies (v within [0, MaxAmount]).
func (r Ratio) Of(v int64) int64 { return mulFloor(v, r) }

func mulFloor(v int64, r Ratio) int64 {
	return mulDiv(v, int64(r), int64(One), false)
}

// mulCeil returns ceil(v * r) for v >= 0, saturating at MaxInt64.
func mulCeil(v int64, r Ratio) int64 {
	return mulDiv(v, int64(r), int64(One), true)
}

// mulDiv computes v*m/d with a 128-bit intermediate for non-negative inputs.
func mulDiv(v, m, d int64, roundUp bool) int64 {
	if v <= 0 || m <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(v), uint64(m))
	if hi >= uint64(d) {
		return math.MaxInt64
	}
	q, rem := bits.Div64(hi, lo, uint64(d))
	if roundUp && rem != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
