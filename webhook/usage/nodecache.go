package usage

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// NodeCache holds the opted-in nodes (a label-selected informer), each stripped to what its
// readers need: the publisher of policy mode and the node gauges of both modes. Everything else
// of a node (conditions, images, labels, managed fields) is dropped before it is stored, so a
// node costs its name and overcommit's few short annotations, whatever the kubelet reports.
type NodeCache struct {
	informer cache.SharedIndexInformer
}

// NewNodeCache builds the cache; Run starts it.
func NewNodeCache(kube kubernetes.Interface) *NodeCache {
	return &NodeCache{informer: informers.NewSharedInformerFactoryWithOptions(kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = names.EnabledLabel + "=" + names.EnabledValue
		}),
		informers.WithTransform(stripNode),
	).Core().V1().Nodes().Informer()}
}

// Run starts the informer until ctx ends.
func (c *NodeCache) Run(ctx context.Context) { go c.informer.Run(ctx.Done()) }

// Synced reports whether the cache has completed its first list.
func (c *NodeCache) Synced() bool { return c.informer.HasSynced() }

// Nodes lists the cached nodes. They are shared with the cache: read them, never change them.
func (c *NodeCache) Nodes() []*corev1.Node {
	objs := c.informer.GetStore().List()
	out := make([]*corev1.Node, 0, len(objs))
	for _, o := range objs {
		if n, ok := o.(*corev1.Node); ok {
			out = append(out, n)
		}
	}
	return out
}

// stripNode keeps what the cache's readers use of an opted-in node: its name, overcommit's
// annotations (the records, ratios, policy, published target and requests) and its cpu and
// memory allocatable.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, ResourceVersion: n.ResourceVersion, Annotations: map[string]string{}},
		Status: corev1.NodeStatus{Allocatable: policy.Pick(n.Status.Allocatable)}}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, names.Prefix) {
			out.Annotations[k] = v
		}
	}
	return out, nil
}
