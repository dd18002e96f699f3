package policy

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Ratio is a non-negative decimal held exactly as millionths, so "1.5" is 1_500_000. Ratios and the
// usage margin use it; results are computed from it with integer math only.
type Ratio int64

// One is the ratio 1.0: no overcommit.
const One Ratio = 1_000_000

// maxParsedRatio caps what ParseRatio returns for huge inputs ("1e9" and beyond), so that later
// arithmetic cannot overflow; anything this large is far above every sane maximum and is clamped.
const maxParsedRatio Ratio = 1_000_000 * One

var errNotDecimal = errors.New("not a decimal number")

// ParseRatio parses a plain decimal ("2", "1.25", "1e1") exactly. Digits beyond the sixth decimal
// place are truncated. Negative values parse (callers clamp them); values above a million saturate.
// It never allocates for ordinary inputs and cannot be made to do unbounded work.
func ParseRatio(s string) (Ratio, error) {
	str := strings.TrimSpace(s)
	if str == "" {
		return 0, errNotDecimal
	}
	if len(str) > 40 {
		return 0, fmt.Errorf("%w: too long", errNotDecimal)
	}
	neg := false
	switch str[0] {
	case '-':
		neg = true
		str = str[1:]
	case '+':
		str = str[1:]
	}
	i := 0
	intStart := i
	for i < len(str) && isDigit(str[i]) {
		i++
	}
	intDigits := str[intStart:i]
	fracDigits := ""
	if i < len(str) && str[i] == '.' {
		i++
		fracStart := i
		for i < len(str) && isDigit(str[i]) {
			i++
		}
		fracDigits = str[fracStart:i]
	}
	if intDigits == "" && fracDigits == "" {
		return 0, errNotDecimal
	}
	exp := 0
	if i < len(str) && (str[i] == 'e' || str[i] == 'E') {
		e, err := strconv.Atoi(str[i+1:])
		if err != nil || e > 100 || e < -100 {
			return 0, fmt.Errorf("%w: bad exponent", errNotDecimal)
		}
		exp = e
		i = len(str)
	}
	if i != len(str) {
		return 0, errNotDecimal
	}
	// value in millionths = digits * 10^scale
	digits := strings.TrimLeft(intDigits+fracDigits, "0")
	scale := exp - len(fracDigits) + 6
	if scale < 0 {
		if len(digits) <= -scale {
			digits = ""
		} else {
			digits = digits[:len(digits)+scale]
		}
		scale = 0
	}
	var v Ratio
	if digits != "" {
		if len(digits)+scale > 18 {
			v = maxParsedRatio
		} else {
			n, err := strconv.ParseInt(digits, 10, 64)
			if err != nil {
				return 0, errNotDecimal
			}
			for ; scale > 0; scale-- {
				n *= 10
			}
			v = min(Ratio(n), maxParsedRatio)
		}
	}
	if neg {
		v = -v
	}
	return v, nil
}

// MustParseRatio is ParseRatio for constants known to be valid.
func MustParseRatio(s string) Ratio {
	r, err := ParseRatio(s)
	if err != nil {
		panic(fmt.Sprintf("invalid ratio %q: %v", s, err))
	}
	return r
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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
