package kube

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/watchlist"
	"k8s.io/utils/ptr"
)

// errNoStream says the stream was refused or broke where a paginated LIST may still work: read
// the pods in pages instead, after dropping any that were handed over.
var errNoStream = errors.New("pods cannot be streamed")

// streamPods reads the pods as a streaming list (a WATCH with sendInitialEvents=true, KEP-3157):
// the apiserver sends every matching pod from its watch cache, one event each, then a bookmark
// that marks the end. It does so at one consistent resource version, as a LIST does.
//
// Why not pages: the apiserver serves a consistent LIST's first page from its watch cache, but on
// a cluster that had run a while it read every continuation page from etcd, at several times the
// CPU per pod (measured in docs/performance.md). The stream is one request served from the cache,
// and this process holds one pod at a time.
//
// It returns errNoStream when the server or the client cannot stream (a fake clientset; a server
// without the WatchList feature, which rejects sendInitialEvents as invalid; no RBAC to watch
// pods) before any pod was handed over. delivered reports how many pods fn saw, so a caller
// that falls back after a broken stream can drop them first.
func streamPods(ctx context.Context, c kubernetes.Interface, namespace, fieldSelector string, fn func(*corev1.Pod)) (delivered int, err error) {
	if watchlist.DoesClientNotSupportWatchListSemantics(c) {
		return 0, errNoStream
	}
	opts := metav1.ListOptions{
		FieldSelector:        fieldSelector,
		Watch:                true,
		AllowWatchBookmarks:  true,
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	}
	w, err := c.CoreV1().Pods(namespace).Watch(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%w: %w", errNoStream, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return delivered, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return delivered, fmt.Errorf("%w: the stream ended before its last pod", errNoStream)
			}
			switch ev.Type {
			case watch.Added:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					return delivered, fmt.Errorf("%w: unexpected %T in the stream", errNoStream, ev.Object)
				}
				fn(p)
				delivered++
			case watch.Bookmark:
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Annotations[metav1.InitialEventsAnnotationKey] == "true" {
					return delivered, nil
				}
			case watch.Error:
				return delivered, fmt.Errorf("%w: %w", errNoStream, apierrors.FromObject(ev.Object))
			default:
				// Modified and Deleted come only after the initial events' bookmark; one before it
				// means the server does not stream lists.
				return delivered, fmt.Errorf("%w: %s event before the end of the initial pods", errNoStream, ev.Type)
			}
		}
	}
}
