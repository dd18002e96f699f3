// Package requests counts pod resource requests the way the scheduler does, for the usage policy
// and the plugin's savings report.
package requests

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// Sub returns a minus b.
func (a Amount) Sub(b Amount) Amount {
	return Amount{MilliCPU: a.MilliCPU - b.MilliCPU, Memory: a.Memory - b.Memory}
}

// Of is a's amount of one resource: millicores for cpu, bytes for memory, 0 for any other (only
// cpu and memory are counted).
func (a Amount) Of(name corev1.ResourceName) int64 {
	switch name {
	case corev1.ResourceCPU:
		return a.MilliCPU
	case corev1.ResourceMemory:
		return a.Memory
	}
	return 0
}

// List is a as a resource list in the formats the kubelet uses: cpu in millicores ("750m"),
// memory in binary units ("1536Mi"), as the usage policy's requests R.
func (a Amount) List() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(a.MilliCPU, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(a.Memory, resource.BinarySI),
	}
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
