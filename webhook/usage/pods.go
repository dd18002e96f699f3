// Package usage keeps the usage policy's inputs in memory: the summed requests of the pods bound
// to each node, from a pod informer stripped to what the policy needs, and NodeMetrics polled
// with one LIST per interval. The node webhook reads them without any API call.
package usage

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// podRequests is all the cache keeps of a pod: its identity, node and effective requests. A full
// Pod is tens of kilobytes; this is about two hundred bytes, which is what lets one replica hold
// 150,000 pods.
type podRequests struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	NodeName string
	Requests requests.Amount
}

func (p *podRequests) DeepCopyObject() runtime.Object {
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

func (p *podRequests) GetObjectKind() schema.ObjectKind { return &p.TypeMeta }

// stripPod is the informer's transform: it runs before an object enters the cache.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones and already stripped objects
	}
	return &podRequests{
		ObjectMeta: metav1.ObjectMeta{
			Name:            pod.Name,
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
		NodeName: pod.Spec.NodeName,
		Requests: requests.Pod(pod),
	}, nil
}

const byNode = "node"

func nodeIndex(obj any) ([]string, error) {
	p, ok := obj.(*podRequests)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T in pod cache", obj)
	}
	return []string{p.NodeName}, nil
}

// podCache sums the requests of non-terminal pods bound to each node.
type podCache struct {
	informer cache.SharedIndexInformer
}

func newPodCache(client kubernetes.Interface, resync time.Duration) (*podCache, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			// Only pods that hold node resources: bound and not terminal. A pod that finishes
			// leaves the watch as a deletion.
			o.FieldSelector = requests.ActivePodsFieldSelector("")
		}),
		informers.WithTransform(stripPod),
	)
	inf := factory.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{byNode: nodeIndex}); err != nil {
		return nil, fmt.Errorf("adding pod index: %w", err)
	}
	return &podCache{informer: inf}, nil
}

func (c *podCache) run(ctx context.Context) { c.informer.RunWithContext(ctx) }

func (c *podCache) synced() bool { return c.informer.HasSynced() }

// requests returns the summed requests of the pods on a node.
func (c *podCache) requests(node string) (requests.Amount, error) {
	objs, err := c.informer.GetIndexer().ByIndex(byNode, node)
	if err != nil {
		return requests.Amount{}, err
	}
	var sum requests.Amount
	for _, o := range objs {
		if p, ok := o.(*podRequests); ok {
			sum = sum.Add(p.Requests)
		}
	}
	return sum, nil
}

// count is how many pods the cache holds.
func (c *podCache) count() int { return len(c.informer.GetStore().ListKeys()) }
