package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// The pressure guard. When the status being written reports MemoryPressure, memory is held at
// max(raw, min(computed, R)), R being the summed requests of the node's pods; PIDPressure holds
// cpu as well. The scheduler then adds no pod there (nothing fits beyond what is requested), and
// the kubelet rejects none that run (each still fits if it restarts and re-admits them). The hold
// lasts until the condition has been clear for PressureCooldown by the node's own clock; it needs
// nothing but the object under review: the condition's lastTransitionTime, and the applied record
// saying the previous write was held (so a new node, whose conditions turned False at start-up,
// is not held).
const (
	// PressureCooldown is how long a node stays held after its pressure clears: the kubelet's own
	// default --eviction-pressure-transition-period, the time it waits before reporting the
	// pressure gone.
	PressureCooldown = 5 * time.Minute

	// HoldMemory and HoldPID name a hold in the applied record's "hold" field.
	HoldMemory = "memory-pressure"
	HoldPID    = "pid-pressure"

	// HeldMemoryPattern and HeldPIDPattern find a hold in an applied record (Go and CEL).
	HeldMemoryPattern = `"hold":"[a-z,-]{0,16}` + HoldMemory
	HeldPIDPattern    = `"hold":"[a-z,-]{0,16}` + HoldPID

	// RequestsPattern is names.RequestsAnnotation: the pods' summed requests.
	RequestsPattern = `^cpu=([0-9]{1,17})m,memory=([0-9]{1,17})$`
)

// MaxRequestsLength is the longest record RequestsPattern matches.
var MaxRequestsLength = len("cpu=m,memory=") + 2*17

var (
	heldMemoryRE = regexp.MustCompile(HeldMemoryPattern)
	heldPIDRE    = regexp.MustCompile(HeldPIDPattern)
	requestsRE   = regexp.MustCompile(RequestsPattern)
)

// Condition is what the guard reads of one node condition.
type Condition struct {
	// True is status "True".
	True bool
	// Since is its lastTransitionTime, in whole seconds; zero when absent.
	Since time.Time
}

// Conditions reads the MemoryPressure and PIDPressure conditions.
func Conditions(conds []corev1.NodeCondition) (memory, pid Condition) {
	for _, c := range conds {
		cond := Condition{True: c.Status == corev1.ConditionTrue, Since: c.LastTransitionTime.Truncate(time.Second)}
		switch c.Type {
		case corev1.NodeMemoryPressure:
			memory = cond
		case corev1.NodePIDPressure:
			pid = cond
		}
	}
	return memory, pid
}

// held says which resources the pressure guard holds.
type held struct{ cpu, memory bool }

func (h held) any() bool { return h.cpu || h.memory }

func (h held) of(name corev1.ResourceName) bool {
	if name == corev1.ResourceCPU {
		return h.cpu
	}
	return h.memory
}

// holds says which resources the guard holds, and the applied record's "hold" value.
func holds(in Input) (held, string) {
	active := func(c Condition, heldBefore *regexp.Regexp) bool {
		if c.True {
			return true
		}
		// Cooling down: the condition cleared less than PressureCooldown ago by the node's
		// clock, and the previous write was held. The record is read last: most writes end at
		// the first test.
		if c.Since.IsZero() || in.Node.Heartbeat.IsZero() || in.Node.Heartbeat.Sub(c.Since) >= PressureCooldown {
			return false
		}
		applied := in.Node.Annotations[names.AppliedAnnotation]
		return !tooLong(applied) && heldBefore.MatchString(applied)
	}
	mem := active(in.Node.MemoryPressure, heldMemoryRE)
	pid := active(in.Node.PIDPressure, heldPIDRE)
	switch {
	case mem && pid:
		return held{cpu: true, memory: true}, HoldMemory + "," + HoldPID
	case pid:
		return held{cpu: true, memory: true}, HoldPID
	case mem:
		return held{memory: true}, HoldMemory
	}
	return held{}, ""
}

// hold is max(raw, min(next, requested)): raw when the requests are unknown.
func hold(raw, next int64, requested int64, known bool) int64 {
	if !known {
		return raw
	}
	return max(raw, min(next, requested))
}

// requests is R for the guard: the caller's (webhook mode: its pod cache), else the node's
// published record when the settings confirm it fresh by the node's clock (policy mode).
func (res *Result) requests(in Input, s Settings) (map[corev1.ResourceName]int64, bool) {
	if in.Requests != nil {
		out := map[corev1.ResourceName]int64{}
		for _, name := range Resources {
			if q, ok := in.Requests[name]; ok {
				out[name] = min(Amount(name, q), MaxAmount)
			} else {
				out[name] = 0
			}
		}
		return out, true
	}
	text, ok := in.Node.Annotations[names.RequestsAnnotation]
	switch {
	case !ok:
		res.warnf("pressure guard: the pods' requests are unknown (no %s); holding at the raw allocatable", names.RequestsAnnotation)
		return nil, false
	case s.TargetsConfirmedAt.IsZero() || in.Node.Heartbeat.IsZero() || in.Node.Heartbeat.Sub(s.TargetsConfirmedAt) > s.MaxMetricsAge:
		res.warnf("pressure guard: %s is not confirmed fresh; holding at the raw allocatable", names.RequestsAnnotation)
		return nil, false
	}
	r, err := ParseRequests(text)
	if err != nil {
		res.warnf("pressure guard: unreadable %s (%v); holding at the raw allocatable", names.RequestsAnnotation, err)
		return nil, false
	}
	return r, true
}

// FormatRequests is names.RequestsAnnotation for summed requests.
func FormatRequests(l corev1.ResourceList) string {
	a := func(name corev1.ResourceName) int64 {
		q, ok := l[name]
		if !ok {
			return 0
		}
		return min(max(Amount(name, q), 0), MaxAmount)
	}
	return "cpu=" + strconv.FormatInt(a(corev1.ResourceCPU), 10) + "m,memory=" + strconv.FormatInt(a(corev1.ResourceMemory), 10)
}

// ParseRequests reads names.RequestsAnnotation: millicores and bytes.
func ParseRequests(s string) (map[corev1.ResourceName]int64, error) {
	if len(s) > MaxRequestsLength {
		return nil, fmt.Errorf("longer than %d characters", MaxRequestsLength)
	}
	m := requestsRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("not in the layout %q", "cpu=<millicores>m,memory=<bytes>")
	}
	cpu, _ := strconv.ParseInt(m[1], 10, 64)
	mem, _ := strconv.ParseInt(m[2], 10, 64)
	return map[corev1.ResourceName]int64{corev1.ResourceCPU: min(cpu, MaxAmount), corev1.ResourceMemory: min(mem, MaxAmount)}, nil
}
