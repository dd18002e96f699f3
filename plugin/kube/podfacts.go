package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// PodFacts is what `check` needs of a pod: who it is, when it was created (the kubelet admits
// oldest first), what it requests and what memory it may use.
type PodFacts struct {
	Namespace, Name string
	// Created is the creation time in Unix seconds.
	Created int64
	// CPU is in millicores, Memory and MemoryLimit in bytes.
	CPU, Memory int64
	MemoryLimit int64
	// NoMemoryLimit says a container of the pod (and the pod itself) sets no memory limit, so the
	// pod may use all the node has.
	NoMemoryLimit bool
}

// PodFactsOf describes a pod.
func PodFactsOf(p *corev1.Pod) PodFacts {
	r := requests.Pod(p)
	f := PodFacts{Namespace: p.Namespace, Name: p.Name, Created: p.CreationTimestamp.Unix(), CPU: r.MilliCPU, Memory: r.Memory}
	limits := resourcehelper.PodLimits(p, resourcehelper.PodResourcesOptions{UseStatusResources: true})
	f.MemoryLimit = limits.Memory().Value()
	f.NoMemoryLimit = unboundedMemory(p)
	return f
}

// unboundedMemory reports a pod whose memory use nothing bounds: no pod-level memory limit, and a
// container (or restartable init container, which runs alongside) without one.
func unboundedMemory(p *corev1.Pod) bool {
	if p.Spec.Resources != nil {
		if _, ok := p.Spec.Resources.Limits[corev1.ResourceMemory]; ok {
			return false
		}
	}
	for _, c := range p.Spec.Containers {
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			return true
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
				return true
			}
		}
	}
	return false
}

// PodFactsByNode lists the non-terminal pods bound to the named nodes (EachPodOnNodes), keeping
// only their PodFacts.
func PodFactsByNode(ctx context.Context, c kubernetes.Interface, nodes []string) (map[string][]PodFacts, error) {
	out := make(map[string][]PodFacts, len(nodes))
	err := EachPodOnNodes(ctx, c, metav1.NamespaceAll, nodes, func(p *corev1.Pod) {
		if requests.Terminal(p) {
			return
		}
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], PodFactsOf(p))
	}, func() { clear(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}
