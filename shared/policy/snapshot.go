package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// snapshot copies the cpu and memory entries of allocatable and capacity.
func snapshot(alloc, capacity corev1.ResourceList) Snapshot {
	return Snapshot{Allocatable: Pick(alloc), Capacity: Pick(capacity)}
}

// AboveCapacity returns a resource whose allocatable s records above its capacity, which no
// kubelet reports (a record forged or edited), and whether there is one.
func (s Snapshot) AboveCapacity() (corev1.ResourceName, bool) {
	for _, name := range Resources {
		a, okA := s.Allocatable[name]
		c, okC := s.Capacity[name]
		if okA && okC && a.Cmp(c) > 0 {
			return name, true
		}
	}
	return "", false
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
