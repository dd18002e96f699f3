package kube

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// perNodeListMax is how many nodes are always read with one field-selected LIST each.
const perNodeListMax = 16

// perNodeShare: when the named nodes are at most this share of the cluster's nodes, each
// node's pods are read on their own. The apiserver answers `spec.nodeName=` from its watch
// cache's index, and its cost goes with the pods it converts and encodes, plus about a request's
// worth for each node: measured at 5,000 nodes and 150,000 pods, the pods of 500 nodes took
// 1.5 s of apiserver CPU and 1.9 s of wall time in 500 LISTs eight at a time, where one LIST of
// every pod took 5 to 16 s of its CPU. With a quarter of the nodes or more, the one LIST wins.
const perNodeShare = 4

// perNodeWorkers bounds the field-selected LISTs in flight.
const perNodeWorkers = 8

// readPerNode says whether the pods of want of the cluster's total nodes (0: unknown) are read
// node by node rather than in one LIST of every bound pod.
func readPerNode(want, total int) bool {
	return want <= perNodeListMax || total > 0 && want*perNodeShare <= total
}

// nodeCount returns how many nodes the cluster has, from a LIST of one node and the count of
// those remaining, or 0 when the apiserver does not say.
func nodeCount(ctx context.Context, c kubernetes.Interface) (int, error) {
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("cannot count nodes: %w", err)
	}
	if l.RemainingItemCount == nil {
		if l.Continue == "" {
			return len(l.Items), nil
		}
		return 0, nil
	}
	return len(l.Items) + int(*l.RemainingItemCount), nil
}

// EachPodOnNodes calls fn, from one goroutine, for every pod not in a terminal phase that is
// bound to one of nodes (and, unless namespace is metav1.NamespaceAll, in that namespace). It
// reads whichever way costs the apiserver less (readPerNode): each node's pods by field
// selector, several nodes at once, each node delivered whole; or every bound pod in one
// paginated LIST, calling reset when an expired continue token restarts it. Every read is
// consistent, so a pod bound a moment ago is counted (disable's safety check needs that).
func EachPodOnNodes(ctx context.Context, c kubernetes.Interface, namespace string, nodes []string, fn func(*corev1.Pod), reset func()) error {
	wanted := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		wanted[n] = true
	}
	// Checked again for clients that ignore field selectors or the namespace of a LIST (the fake
	// clientset answers a field-selected LIST with every pod).
	keep := func(p *corev1.Pod) bool {
		return wanted[p.Spec.NodeName] && (namespace == metav1.NamespaceAll || p.Namespace == namespace)
	}
	total := 0
	if !readPerNode(len(wanted), 0) {
		// An unknown count reads every pod, as before counting was possible.
		total, _ = nodeCount(ctx, c)
	}
	if !readPerNode(len(wanted), total) {
		err := EachPodIn(ctx, c, namespace, requests.ActivePodsFieldSelector(""), func(p *corev1.Pod) {
			if keep(p) {
				fn(p)
			}
		}, reset)
		if err != nil {
			return fmt.Errorf("cannot list pods: %w", err)
		}
		return nil
	}
	return eachNodesPods(ctx, c, namespace, wanted, keep, fn)
}

// eachNodesPods reads each wanted node's pods with a LIST of its own, perNodeWorkers at a time,
// and hands them to fn node by node on the calling goroutine.
func eachNodesPods(ctx context.Context, c kubernetes.Interface, namespace string, wanted map[string]bool, keep func(*corev1.Pod) bool, fn func(*corev1.Pod)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type nodePods struct {
		pods []*corev1.Pod
		err  error
	}
	names := make(chan string)
	results := make(chan nodePods)
	go func() {
		defer close(names)
		for n := range wanted {
			select {
			case names <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range min(perNodeWorkers, len(wanted)) {
		wg.Go(func() {
			for n := range names {
				var pods []*corev1.Pod
				// Pages, not a stream: a node's pods fit one page, and a LIST costs less than a WATCH.
				err := pagePods(ctx, c, namespace, requests.ActivePodsFieldSelector(n), func(p *corev1.Pod) {
					if p.Spec.NodeName == n && keep(p) {
						pods = append(pods, p)
					}
				}, func() { pods = pods[:0] })
				if err != nil {
					err = fmt.Errorf("cannot list the pods on node %q: %w", n, err)
				}
				select {
				case results <- nodePods{pods: pods, err: err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	for r := range results {
		if r.err != nil {
			return r.err
		}
		for _, p := range r.pods {
			fn(p)
		}
	}
	return ctx.Err()
}
