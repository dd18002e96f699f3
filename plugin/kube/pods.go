package kube

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// Load is what the non-terminal pods bound to one node request, counted like the scheduler.
type Load struct {
	Requests requests.Amount
	Pods     int
}

// PodLoad is one pod's requests: the strings the listing decoded anyway and two integers, so
// that 150,000 of them stay small.
type PodLoad struct {
	Namespace, Name string
	// CPU is in millicores, Memory in bytes.
	CPU, Memory int64
}

// Loads returns the load of each named node (nodes without pods get a zero Load). It reads the
// pods with EachPodOnNodes: each node's by field selector for a few nodes or a small share of
// the cluster's, otherwise all bound pods once (EachPodIn: one stream, or pages), summed by node
// in a map, so 150,000 pods are never held at once. The reads are consistent:
// disable's safety check must count a pod bound a moment ago.
func Loads(ctx context.Context, c kubernetes.Interface, nodes []string) (map[string]Load, error) {
	return LoadsIn(ctx, c, nodes, metav1.NamespaceAll)
}

// LoadsIn is Loads counting only the pods of one namespace (metav1.NamespaceAll: every pod).
func LoadsIn(ctx context.Context, c kubernetes.Interface, nodes []string, namespace string) (map[string]Load, error) {
	return loadsIn(ctx, c, nodes, namespace, nil)
}

// LoadsWithPods is LoadsIn that also returns each counted pod's requests by node name, in
// listing order (savings --pods), from the same LIST.
func LoadsWithPods(ctx context.Context, c kubernetes.Interface, nodes []string, namespace string) (map[string]Load, map[string][]PodLoad, error) {
	pods := make(map[string][]PodLoad, len(nodes))
	loads, err := loadsIn(ctx, c, nodes, namespace, pods)
	if err != nil {
		return nil, nil, err
	}
	return loads, pods, nil
}

// loadsIn is LoadsIn, appending each counted pod to pods when pods is not nil.
func loadsIn(ctx context.Context, c kubernetes.Interface, nodes []string, namespace string, pods map[string][]PodLoad) (map[string]Load, error) {
	loads := make(map[string]Load, len(nodes))
	for _, n := range nodes {
		loads[n] = Load{}
	}
	err := EachPodOnNodes(ctx, c, namespace, nodes, func(p *corev1.Pod) {
		if r, counted := addPod(loads, p); counted && pods != nil {
			pods[p.Spec.NodeName] = append(pods[p.Spec.NodeName], PodLoad{Namespace: p.Namespace, Name: p.Name, CPU: r.MilliCPU, Memory: r.Memory})
		}
	}, func() {
		for n := range loads {
			loads[n] = Load{}
		}
		clear(pods)
	})
	if err != nil {
		return nil, err
	}
	return loads, nil
}

// addPod counts p on its node and returns its requests, or false when it does not count.
func addPod(loads map[string]Load, p *corev1.Pod) (requests.Amount, bool) {
	// The field selector already excludes these; checking again keeps the sums right for
	// clients that ignore field selectors (the fake clientset does).
	if p.Spec.NodeName == "" || requests.Terminal(p) {
		return requests.Amount{}, false
	}
	r := requests.Pod(p)
	l := loads[p.Spec.NodeName]
	l.Requests = l.Requests.Add(r)
	l.Pods++
	loads[p.Spec.NodeName] = l
	return r, true
}

// PodPageSize bounds each page of a pod LIST. Each page is a round trip in which the apiserver
// selects, encodes and compresses while the plugin waits, and then the other way round. Measured
// with 150,000 pods on the local control plane (2 cores shared with the apiserver): pages of 500
// took 13 to 14 s and 9 to 15 s of apiserver CPU, pages of 5,000 8 s and 8 s; pages of 10,000
// gained nothing more and took 277 MiB instead of about 200 MiB (the plugin holds up to three
// pages: the one being summed, the next one decoded, and the one after being read).
const PodPageSize = 5000

// EachPod calls fn for every pod matching the field selector, in one consistent read, from one
// goroutine, in order. It streams the pods (streamPods) where the server and the user's RBAC
// allow, else lists them page by page (pagePods). reset is called on the same goroutine when the
// read starts over, a broken stream falling back to pages or an expired continue token
// restarting the pages, so the caller can drop what it summed.
func EachPod(ctx context.Context, c kubernetes.Interface, fieldSelector string, fn func(*corev1.Pod), reset func()) error {
	return EachPodIn(ctx, c, metav1.NamespaceAll, fieldSelector, fn, reset)
}

// EachPodIn is EachPod over one namespace's pods (metav1.NamespaceAll: every namespace).
func EachPodIn(ctx context.Context, c kubernetes.Interface, namespace, fieldSelector string, fn func(*corev1.Pod), reset func()) error {
	n, err := streamPods(ctx, c, namespace, fieldSelector, fn)
	if !errors.Is(err, errNoStream) {
		return err
	}
	if n > 0 {
		reset()
	}
	return pagePods(ctx, c, namespace, fieldSelector, fn, reset)
}

// pagePods is EachPodIn by paginated LIST. A goroutine fetches and decodes the next page while fn
// runs over the current one, so the plugin's CPU overlaps with the apiserver's. The pages are one
// consistent read: each continue token carries the resource version of the first page.
func pagePods(ctx context.Context, c kubernetes.Interface, namespace, fieldSelector string, fn func(*corev1.Pod), reset func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// nil is the restart marker; a closed channel means the listing ended (see errc).
	pages := make(chan *corev1.PodList)
	send := func(l *corev1.PodList) error {
		select {
		case pages <- l:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	errc := make(chan error, 1)
	go func() {
		defer close(pages)
		opts := metav1.ListOptions{FieldSelector: fieldSelector, Limit: PodPageSize}
		errc <- paginate(ctx, opts, func(ctx context.Context, opts metav1.ListOptions) (metav1.ListInterface, error) {
			list, err := c.CoreV1().Pods(namespace).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			if err := send(list); err != nil {
				return nil, err
			}
			return list, nil
		}, func() { _ = send(nil) }) // on a cancelled context the next List fails
	}()
	for list := range pages {
		if list == nil {
			reset()
			continue
		}
		for i := range list.Items {
			fn(&list.Items[i])
		}
	}
	return <-errc
}
