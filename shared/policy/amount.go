package policy

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MaxAmount bounds the amounts the policy changes: millicores for cpu, bytes for memory (2^55:
// 32 PiB, or 36 billion cores). With ratios capped at MaxRatio, every intermediate of the policy
// stays below 2^62, so int64 arithmetic cannot overflow in Go or in the CEL of policy mode (where
// an overflow is an evaluation error, not a wrapped value).
const MaxAmount int64 = 1 << 55

var (
	maxCPU    = *resource.NewMilliQuantity(MaxAmount, resource.DecimalSI)
	maxMemory = *resource.NewQuantity(MaxAmount, resource.BinarySI)
)

// amount returns q as the integer the policy works in (millicores for cpu, bytes otherwise), or an
// error when that integer would not be exact or is out of [0, MaxAmount]. A resource with such an
// amount is left as it is: rounding it would change what the kubelet reported, and multiplying a
// saturated value is how absurd inputs used to become a negative capacity or zero cpu.
func amount(name corev1.ResourceName, q resource.Quantity) (int64, error) {
	limit, scale := maxMemory, resource.Scale(0)
	if name == corev1.ResourceCPU {
		limit, scale = maxCPU, resource.Milli
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("%s %s is negative", name, q.String())
	}
	if q.Cmp(limit) > 0 {
		return 0, fmt.Errorf("%s %s is above the largest amount overcommit changes (%s)", name, q.String(), limit.String())
	}
	v := q.ScaledValue(scale)
	if resource.NewScaledQuantity(v, scale).Cmp(q) != 0 {
		unit := "byte"
		if name == corev1.ResourceCPU {
			unit = "millicore"
		}
		return 0, fmt.Errorf("%s %s is not a whole number of %ss", name, q.String(), unit)
	}
	return v, nil
}

// Quantity is the inverse of Amount, in the format the kubelet uses for the resource: millicores
// for cpu ("3500m", "4"), bytes in binary units otherwise ("8Gi", "5760Mi").
func Quantity(name corev1.ResourceName, v int64) resource.Quantity {
	if name == corev1.ResourceCPU {
		return *resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	return *resource.NewQuantity(v, resource.BinarySI)
}

// Amount is a resource amount as the policy counts it (millicores for cpu, bytes otherwise),
// rounded up, for callers that print or sum what the policy computed and for measured usage. It
// saturates at the int64 bounds instead of failing: Quantity.MilliValue and Value wrap around
// there (1e400 cores read as 0 millicores, 9223372036854775807 cores as -1000).
func Amount(name corev1.ResourceName, q resource.Quantity) int64 {
	hi, lo := maxInt64Bytes, minInt64Bytes
	if name == corev1.ResourceCPU {
		hi, lo = maxInt64Millis, minInt64Millis
	}
	switch {
	case q.Cmp(hi) >= 0:
		return math.MaxInt64
	case q.Cmp(lo) <= 0:
		return math.MinInt64
	case name == corev1.ResourceCPU:
		return q.MilliValue()
	}
	return q.Value()
}

var (
	maxInt64Millis = *resource.NewMilliQuantity(math.MaxInt64, resource.DecimalSI)
	minInt64Millis = *resource.NewMilliQuantity(math.MinInt64, resource.DecimalSI)
	maxInt64Bytes  = *resource.NewQuantity(math.MaxInt64, resource.BinarySI)
	minInt64Bytes  = *resource.NewQuantity(math.MinInt64, resource.BinarySI)
)

// Value is the amount of name in l as Amount counts it; 0 when l has none.
func Value(l corev1.ResourceList, name corev1.ResourceName) int64 {
	q, ok := l[name]
	if !ok {
		return 0
	}
	return Amount(name, q)
}
