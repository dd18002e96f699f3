package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// MetricsGroupVersion is the API metrics-server serves NodeMetrics under.
const MetricsGroupVersion = "metrics.k8s.io/v1beta1"

// NodeUsage is one node's measured usage.
type NodeUsage struct {
	Usage     corev1.ResourceList
	Timestamp time.Time
}

// Usage holds the NodeMetrics of the cluster, or why there are none.
type Usage struct {
	// Nodes maps node names to their latest sample; nil when Unavailable is set.
	Nodes map[string]NodeUsage
	// Unavailable says why metrics.k8s.io could not be read ("" when it was).
	Unavailable string
}

// ReadUsage lists all NodeMetrics once. metrics.k8s.io is optional: when discovery does not
// serve it, or listing fails, Usage says why and callers carry on without usage (it is not an
// error, unlike kube-capacity's exit).
func ReadUsage(ctx context.Context, c kubernetes.Interface, m metricsclient.Interface) Usage {
	if _, err := c.Discovery().ServerResourcesForGroupVersion(MetricsGroupVersion); err != nil {
		if apierrors.IsNotFound(err) {
			return Usage{Unavailable: MetricsGroupVersion + " is not served (is metrics-server installed?)"}
		}
		return Usage{Unavailable: fmt.Sprintf("cannot discover %s: %v", MetricsGroupVersion, err)}
	}
	if m == nil {
		return Usage{Unavailable: "no metrics client"}
	}
	list, err := m.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Usage{Unavailable: fmt.Sprintf("cannot list NodeMetrics: %v", err)}
	}
	u := Usage{Nodes: make(map[string]NodeUsage, len(list.Items))}
	for _, nm := range list.Items {
		u.Nodes[nm.Name] = NodeUsage{Usage: nm.Usage, Timestamp: nm.Timestamp.Time}
	}
	return u
}
