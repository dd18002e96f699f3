// Package requests counts pod resource requests the way the scheduler does, for the usage policy
// and the plugin's savings report.
package requests

import (
	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Amount is a pod's or node's cpu (millicores) and memory (bytes) requests.
type Amount struct {
	MilliCPU int64
	Memory   int64
}

// Add returns the sum of a and b.
func (a Amount) Add(b Amount) Amount {
	return Amount{MilliCPU: a.MilliCPU + b.MilliCPU, Memory: a.Memory + b.Memory}
}

// Pod returns the pod's effective requests as the scheduler counts them: the larger of the sum of
// app containers (plus restartable init containers) and the largest init container, pod-level
// requests when set, in-place resized values from status, plus pod overhead.
func Pod(pod *corev1.Pod) Amount {
	l := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{UseStatusResources: true})
	return Amount{MilliCPU: l.Cpu().MilliValue(), Memory: l.Memory().Value()}
}

// Terminal reports whether a pod no longer holds node resources (Succeeded or Failed). The
// scheduler ignores such pods when it sums a node's requests.
func Terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// ActivePodsFieldSelector lists the pods bound to a node that still hold its resources; an empty
// node name selects the pods bound to any node.
func ActivePodsFieldSelector(nodeName string) string {
	node := "spec.nodeName!="
	if nodeName != "" {
		node = "spec.nodeName=" + nodeName
	}
	return node + ",status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
}
