package savings

import (
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Filter keeps the rows that answer "which nodes are over-promised" (extra at least a quantity)
// and "which nodes are under-used" (usage at most a percentage of requests). Each bound is
// optional; a row is shown when it meets every bound given. The zero Filter keeps every row.
type Filter struct {
	// MinExtra is the least extra (stored - raw) per resource, in millicores or bytes.
	MinExtra map[corev1.ResourceName]int64
	// MaxUsePercent is the most usage as a percentage of requests per resource. A node without
	// that percentage (no usage sample, or nothing requested) is not shown: it cannot be said to
	// be under-used.
	MaxUsePercent map[corev1.ResourceName]int64
}

// Empty says whether f keeps every row.
func (f Filter) Empty() bool { return len(f.MinExtra) == 0 && len(f.MaxUsePercent) == 0 }

// NeedsUsage says whether f reads usage, which needs metrics.k8s.io.
func (f Filter) NeedsUsage() bool { return len(f.MaxUsePercent) > 0 }

// ParseMinExtra reads a --min-*-extra value: a quantity such as "500m", "2" or "1Gi".
func ParseMinExtra(name corev1.ResourceName, value string) (int64, error) {
	q, err := resource.ParseQuantity(value)
	if err != nil {
		return 0, fmt.Errorf("must be a quantity such as %s", map[corev1.ResourceName]string{corev1.ResourceCPU: `"500m" or "2"`, corev1.ResourceMemory: `"512Mi" or "2Gi"`}[name])
	}
	if q.Sign() < 0 {
		return 0, errors.New("must not be negative")
	}
	return policy.Amount(name, q), nil
}

// ParseMaxUsePercent reads a --max-*-use-percent value: a whole number of percent, 0 or more
// (usage can exceed requests, so above 100 is meaningful).
func ParseMaxUsePercent(value string) (int64, error) {
	p, err := strconv.ParseInt(value, 10, 64)
	if err != nil || p < 0 {
		return 0, errors.New("must be a whole number of percent, 0 or more (e.g. 50)")
	}
	return p, nil
}

// keeps says whether a row with these amounts (policy.Resources order) is shown.
func (f Filter) keeps(amounts [2]sums) bool {
	for k, name := range policy.Resources {
		s := amounts[k]
		if least, ok := f.MinExtra[name]; ok && s.extra < least {
			return false
		}
		if most, ok := f.MaxUsePercent[name]; ok {
			if !s.hasUsage {
				return false
			}
			p := percentOf(s.usage, s.requests)
			if p == nil || *p > most {
				return false
			}
		}
	}
	return true
}

// Descriptions say what f keeps, one phrase per bound in policy.Resources order:
// "cpu extra at least 500m", "memory usage at most 50% of requests". Words, not ">=": JSON
// encoders escape "<" and ">".
func (f Filter) Descriptions() []string {
	var out []string
	for _, name := range policy.Resources {
		if least, ok := f.MinExtra[name]; ok {
			q := policy.Quantity(name, least)
			out = append(out, fmt.Sprintf("%s extra at least %s", name, q.String()))
		}
	}
	for _, name := range policy.Resources {
		if most, ok := f.MaxUsePercent[name]; ok {
			out = append(out, fmt.Sprintf("%s usage at most %d%% of requests", name, most))
		}
	}
	return out
}
