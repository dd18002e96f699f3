package policy

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
)

// snapshot copies the cpu and memory entries of allocatable and capacity.
func snapshot(alloc, capacity corev1.ResourceList) Snapshot {
	return Snapshot{Allocatable: Pick(alloc), Capacity: Pick(capacity)}
}

// Pick copies the entries of l that overcommit changes (Resources).
func Pick(l corev1.ResourceList) corev1.ResourceList {
	out := make(corev1.ResourceList, len(Resources))
	for _, name := range Resources {
		if q, ok := l[name]; ok {
			out[name] = q
		}
	}
	return out
}

// overlay returns a copy of l with the entries of over replacing its own.
func overlay(l, over corev1.ResourceList) corev1.ResourceList {
	out := make(corev1.ResourceList, len(l)+len(over))
	for k, v := range l {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// sameResources reports whether cpu and memory agree between a and b (missing equals missing).
func sameResources(a, b corev1.ResourceList) bool {
	for _, name := range Resources {
		qa, oka := a[name]
		qb, okb := b[name]
		if oka != okb || (oka && qa.Cmp(qb) != 0) {
			return false
		}
	}
	return true
}

// MarshalAnnotation encodes a Snapshot or Applied record for a node annotation, as
// encoding/json would; the two known records are written directly because every node review
// encodes both.
func MarshalAnnotation(v any) (string, error) {
	switch v := v.(type) {
	case Snapshot:
		return string(v.appendFields(append(make([]byte, 0, 128), '{'))), nil
	case Applied:
		b := append(make([]byte, 0, 192), `{"policy":`...)
		b = jsonappend.String(b, v.Policy)
		b = append(b, `,"cpuRatio":`...)
		b = jsonappend.String(b, v.CPURatio)
		b = append(b, `,"memoryRatio":`...)
		b = jsonappend.String(b, v.MemoryRatio)
		return string(v.Snapshot.appendFields(append(b, ','))), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// appendFields appends the snapshot's members and the closing brace.
func (s Snapshot) appendFields(b []byte) []byte {
	b = append(b, `"allocatable":`...)
	b = jsonappend.ResourceList(b, s.Allocatable)
	if len(s.Capacity) > 0 {
		b = append(b, `,"capacity":`...)
		b = jsonappend.ResourceList(b, s.Capacity)
	}
	return append(b, '}')
}
