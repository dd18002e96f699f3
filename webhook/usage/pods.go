// Package usage keeps the usage policy's inputs in memory: the summed requests of the pods bound
// to each node, from a pod informer stripped to what the policy needs, and each node's window of
// usage samples (shared/history), fed by NodeMetrics polled with one LIST per interval. The node
// webhook reads them without any API call; in policy mode the Publisher writes them where the
// in-apiserver policy reads them.
package usage

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// podRecord is all the cache keeps of a pod: its store key, its node and its effective requests,
// 48 bytes plus the key. A decoded Pod is kilobytes and even a bare ObjectMeta is a few hundred
// bytes; at 150,000 pods that difference is most of the webhook's memory.
type podRecord struct {
	key  string // namespace/name, as cache.MetaNamespaceKeyFunc makes it
	node string // the node's sum's copy of the name once the node has one: one copy per node
	req  requests.Amount
}

// GetObjectMeta lets the informer's store key the record (meta.Accessor accepts an
// ObjectMetaAccessor). It is called once or twice per event; the ObjectMeta is not kept.
func (p *podRecord) GetObjectMeta() metav1.Object {
	ns, name, _ := cache.SplitMetaNamespaceKey(p.key)
	return &metav1.ObjectMeta{Namespace: ns, Name: name}
}

// nodeSum is the running total of the pods bound to one node.
type nodeSum struct {
	name string // the copy of the name that records share
	sum  requests.Amount
	pods int
}

// podCache sums the requests of non-terminal pods bound to each node. The event handler, which
// the informer calls synchronously as it applies each change to its store, keeps the record each
// pod contributed and the per-node sums, so a lookup is one map read and the sums are complete
// when the informer reports synced. The handler keys on the pod, not on the objects it is handed:
// a deletion carries the pod's final state, whose requests may differ from what was added (a pod
// leaves the watch as a deletion when it turns terminal, with its new status), and it is what
// was added that must be subtracted.
type podCache struct {
	controller cache.Controller

	mu    sync.RWMutex
	byKey map[string]*podRecord // what each pod added to its node's sum
	nodes map[string]*nodeSum
}

// stripPod is the informer's transform: it runs before an object enters the cache (and, for the
// streamed initial list, as each object arrives), so whole pods are never held.
func (c *podCache) stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones and already stripped objects
	}
	node := pod.Spec.NodeName
	c.mu.RLock()
	if n := c.nodes[node]; n != nil {
		node = n.name // drop the decoded copy of the name
	}
	c.mu.RUnlock()
	return &podRecord{key: pod.Namespace + "/" + pod.Name, node: node, req: requests.Pod(pod)}, nil
}

func (c *podCache) add(obj any) {
	p, ok := obj.(*podRecord)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Replace what the pod added before, if anything, under one lock: a reader never sees a sum
	// without the pod in it.
	c.subtractLocked(p.key)
	n := c.nodes[p.node]
	if n == nil {
		n = &nodeSum{name: p.node}
		c.nodes[p.node] = n
	}
	n.sum = n.sum.Add(p.req)
	n.pods++
	c.byKey[p.key] = p
}

func (c *podCache) remove(obj any) {
	var key string
	switch o := obj.(type) {
	case cache.DeletedFinalStateUnknown:
		key = o.Key
	case *podRecord:
		key = o.key
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subtractLocked(key)
}

// subtractLocked takes what the pod added out of its node's sum and forgets the pod.
func (c *podCache) subtractLocked(key string) {
	p := c.byKey[key]
	if p == nil {
		return
	}
	delete(c.byKey, key)
	n := c.nodes[p.node]
	n.sum = n.sum.Sub(p.req)
	n.pods--
	if n.pods == 0 {
		delete(c.nodes, p.node)
	}
}

func newPodCache(client kubernetes.Interface, resync time.Duration) (*podCache, error) {
	c := &podCache{byKey: map[string]*podRecord{}, nodes: map[string]*nodeSum{}}
	// Only pods that hold node resources: bound and not terminal. A pod that finishes leaves the
	// watch as a deletion.
	selector := requests.ActivePodsFieldSelector("")
	pods := client.CoreV1().Pods(metav1.NamespaceAll)
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return pods.Watch(ctx, o)
		},
	}, client)
	_, c.controller = cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		ResyncPeriod:  resync,
		Transform:     c.stripPod,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.add,
			UpdateFunc: func(_, newObj any) { c.add(newObj) },
			DeleteFunc: c.remove,
		},
	})
	return c, nil
}

func (c *podCache) run(ctx context.Context) { c.controller.RunWithContext(ctx) }

// synced reports whether the initial list has been applied: the handler runs as each item is
// stored, so the sums are complete once the controller says so.
func (c *podCache) synced() bool { return c.controller.HasSynced() }

// requests returns the summed requests of the pods on a node.
func (c *podCache) requests(node string) (requests.Amount, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if n := c.nodes[node]; n != nil {
		return n.sum, nil
	}
	return requests.Amount{}, nil
}

// count is how many pods the cache holds.
func (c *podCache) count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byKey)
}
