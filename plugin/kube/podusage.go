package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// PodUsageAmount is one pod's measured usage: cpu in millicores (rounded up), memory in bytes.
type PodUsageAmount struct {
	CPU, Memory int64
}

// PodUsage holds the PodMetrics of the pods counted, or why there are none.
type PodUsage struct {
	// Pods maps "namespace/name" to the pod's latest sample; nil when Unavailable is set.
	Pods map[string]PodUsageAmount
	// Unavailable says why PodMetrics could not be read ("" when they were).
	Unavailable string
}

// PodKey is the key of PodUsage.Pods.
func PodKey(namespace, name string) string { return namespace + "/" + name }

// ReadPodUsage lists the PodMetrics of one namespace (metav1.NamespaceAll: every namespace) in
// pages of PodPageSize, summing each pod's containers into two integers, so that only a page of
// PodMetrics is held at a time. The caller has read NodeMetrics (ReadUsage) first, so
// metrics.k8s.io is served; a failed LIST (forbidden, say) is not an error, it is why there is
// no pod usage.
func ReadPodUsage(ctx context.Context, m metricsclient.Interface, namespace string) PodUsage {
	if m == nil {
		return PodUsage{Unavailable: "no metrics client"}
	}
	u := PodUsage{Pods: map[string]PodUsageAmount{}}
	err := paginate(ctx, metav1.ListOptions{Limit: PodPageSize}, func(ctx context.Context, opts metav1.ListOptions) (metav1.ListInterface, error) {
		list, err := m.MetricsV1beta1().PodMetricses(namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			pm := &list.Items[i]
			var a PodUsageAmount
			for _, c := range pm.Containers {
				a.CPU += policy.Value(c.Usage, corev1.ResourceCPU)
				a.Memory += policy.Value(c.Usage, corev1.ResourceMemory)
			}
			u.Pods[PodKey(pm.Namespace, pm.Name)] = a
		}
		return list, nil
	}, func() { clear(u.Pods) })
	if err != nil {
		return PodUsage{Unavailable: fmt.Sprintf("cannot list PodMetrics: %v", err)}
	}
	return u
}
