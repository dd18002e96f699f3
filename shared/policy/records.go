package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
)

// The records (names.RawAnnotation, names.AppliedAnnotation) are read by two parsers that must
// agree to the byte: this one, and the CEL of policy mode, which has no JSON decoder and reads them
// with the same regular expressions (RE2 in both). So a record is accepted only in the fixed
// layout both modes write, with short quantity spellings: an annotation anyone can edit never
// reaches resource.ParseQuantity unbounded (an exponent such as 1e-2000000000 makes it build a
// huge integer).
const (
	// RecordQuantityPattern is a quantity as Quantity.String writes a bounded amount.
	RecordQuantityPattern = `[0-9]{1,19}(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?`
	// MaxRecordLength bounds a record, in characters (as CEL counts), before any pattern runs.
	MaxRecordLength = 1024
)

var (
	// RecordListPattern is one list of a record: cpu then memory, each optional.
	RecordListPattern = `\{("cpu":"` + RecordQuantityPattern + `")?(,?"memory":"` + RecordQuantityPattern + `")?\}`
	// RawRecordPattern is the whole of a raw record.
	RawRecordPattern = `^\{"allocatable":` + RecordListPattern + `(,"capacity":` + RecordListPattern + `)?\}$`
	// AppliedAllocatablePattern finds the allocatable of an applied record; a readable record
	// holds it exactly once, between braces.
	AppliedAllocatablePattern = `"allocatable":` + RecordListPattern
	// RecordCPUPattern and RecordMemoryPattern find one entry in a matched list.
	RecordCPUPattern    = `"cpu":"` + RecordQuantityPattern + `"`
	RecordMemoryPattern = `"memory":"` + RecordQuantityPattern + `"`

	rawRecordRE       = regexp.MustCompile(RawRecordPattern)
	appliedAllocRE    = regexp.MustCompile(AppliedAllocatablePattern)
	recordCPURE       = regexp.MustCompile(RecordCPUPattern)
	recordMemoryRE    = regexp.MustCompile(RecordMemoryPattern)
	rawCapacityListRE = regexp.MustCompile(`"capacity":` + RecordListPattern)
	rawAllocListRE    = regexp.MustCompile(`^\{"allocatable":` + RecordListPattern)
)

// ParseRaw reads names.RawAnnotation: the kubelet's own cpu and memory.
func ParseRaw(s string) (Snapshot, error) {
	if tooLong(s) {
		return Snapshot{}, fmt.Errorf("longer than %d characters", MaxRecordLength)
	}
	if !rawRecordRE.MatchString(s) {
		return Snapshot{}, fmt.Errorf("not in the layout overcommit writes")
	}
	snap := Snapshot{Allocatable: recordList(rawAllocListRE.FindString(s))}
	if c := rawCapacityListRE.FindString(s); c != "" {
		snap.Capacity = recordList(c)
	}
	if len(snap.Allocatable) == 0 {
		return Snapshot{}, fmt.Errorf("no allocatable")
	}
	return snap, nil
}

// ParseApplied reads names.AppliedAnnotation. Only its allocatable decides anything (is the
// incoming allocatable our own output?); the other fields are for people and are read leniently.
func ParseApplied(s string) (Applied, error) {
	if tooLong(s) {
		return Applied{}, fmt.Errorf("longer than %d characters", MaxRecordLength)
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return Applied{}, fmt.Errorf("not a JSON object")
	}
	lists := appliedAllocRE.FindAllString(s, 2)
	if len(lists) != 1 {
		return Applied{}, fmt.Errorf("not in the layout overcommit writes")
	}
	a := appliedFields(s)
	a.Allocatable = recordList(lists[0])
	if c := rawCapacityListRE.FindString(s); c != "" {
		a.Capacity = recordList(c)
	}
	return a, nil
}

// tooLong reports a record longer than MaxRecordLength characters, in constant time for the
// long ones (a character is at most 4 bytes): a record is refused before anything scans it.
func tooLong(s string) bool {
	return len(s) > 4*MaxRecordLength || utf8.RuneCountInString(s) > MaxRecordLength
}

// recordList reads the cpu and memory of one matched list; the pattern has already bounded them.
func recordList(s string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if m := recordCPURE.FindString(s); m != "" {
		l[corev1.ResourceCPU] = resource.MustParse(m[len(`"cpu":"`) : len(m)-1])
	}
	if m := recordMemoryRE.FindString(s); m != "" {
		l[corev1.ResourceMemory] = resource.MustParse(m[len(`"memory":"`) : len(m)-1])
	}
	return l
}

var (
	appliedPolicyRE = regexp.MustCompile(`"policy":"([a-z]{1,16})"`)
	appliedCPURE    = regexp.MustCompile(`"cpuRatio":"([0-9.]{1,20})"`)
	appliedMemRE    = regexp.MustCompile(`"memoryRatio":"([0-9.]{1,20})"`)
	appliedUsageRE  = regexp.MustCompile(`"usage":"(` + StatisticPattern + `)"`)
	appliedHoldRE   = regexp.MustCompile(`"hold":"([a-z,-]{1,40})"`)
)

func appliedFields(s string) Applied {
	var a Applied
	if m := appliedPolicyRE.FindStringSubmatch(s); m != nil {
		a.Policy = m[1]
	}
	if m := appliedCPURE.FindStringSubmatch(s); m != nil {
		a.CPURatio = m[1]
	}
	if m := appliedMemRE.FindStringSubmatch(s); m != nil {
		a.MemoryRatio = m[1]
	}
	if m := appliedUsageRE.FindStringSubmatch(s); m != nil {
		a.Usage = m[1]
	}
	if m := appliedHoldRE.FindStringSubmatch(s); m != nil {
		a.Hold = m[1]
	}
	return a
}

// spell writes an amount the policy computed: millicores with "m" for cpu, bytes for memory.
// Quantity.String would write the canonical form ("8", "2k"), which CEL cannot produce; the
// apiserver stores status quantities canonically either way, and the records keep this spelling.
func spell(name corev1.ResourceName, v int64) string {
	if name == corev1.ResourceCPU {
		return strconv.FormatInt(v, 10) + "m"
	}
	return strconv.FormatInt(v, 10)
}

// rawRecordOf writes a raw record of the incoming lists, each value as the node carries it.
func rawRecordOf(s Snapshot) string {
	b := append(make([]byte, 0, 128), `{"allocatable":`...)
	b = appendRecordList(b, s.Allocatable, nil)
	if hasAny(s.Capacity) {
		b = append(b, `,"capacity":`...)
		b = appendRecordList(b, s.Capacity, nil)
	}
	return string(append(b, '}'))
}

// appliedRecordOf writes the applied record: computed values in spell's spelling, the others as
// the node carries them.
func appliedRecordOf(a Applied, alloc, capacity map[corev1.ResourceName]string) string {
	b := append(make([]byte, 0, 192), `{"policy":`...)
	b = jsonappend.String(b, a.Policy)
	b = append(b, `,"cpuRatio":`...)
	b = jsonappend.String(b, a.CPURatio)
	b = append(b, `,"memoryRatio":`...)
	b = jsonappend.String(b, a.MemoryRatio)
	if a.Usage != "" {
		b = append(b, `,"usage":`...)
		b = jsonappend.String(b, a.Usage)
	}
	if a.Hold != "" {
		b = append(b, `,"hold":`...)
		b = jsonappend.String(b, a.Hold)
	}
	b = append(b, `,"allocatable":`...)
	b = appendRecordList(b, a.Allocatable, alloc)
	if hasAny(a.Capacity) {
		b = append(b, `,"capacity":`...)
		b = appendRecordList(b, a.Capacity, capacity)
	}
	return string(append(b, '}'))
}

func appendRecordList(b []byte, l corev1.ResourceList, spelled map[corev1.ResourceName]string) []byte {
	b = append(b, '{')
	first := true
	for _, name := range Resources {
		q, ok := l[name]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		v, ok := spelled[name]
		if !ok {
			v = q.String()
		}
		b = jsonappend.String(b, string(name))
		b = append(b, ':')
		b = jsonappend.String(b, v)
	}
	return append(b, '}')
}

func hasAny(l corev1.ResourceList) bool {
	for _, name := range Resources {
		if _, ok := l[name]; ok {
			return true
		}
	}
	return false
}
