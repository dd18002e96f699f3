package kube

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
)

// streamingClient hides the fake clientset's IsWatchListSemanticsUnSupported, so streamPods
// tries the watch the test's reactor answers.
type streamingClient struct{ kubernetes.Interface }

func TestEachPodInStream(t *testing.T) {
	pod := func(name string) *corev1.Pod { return testcluster.Pod(name, "n", "100m", "1Mi") }
	added := func(name string) watch.Event { return watch.Event{Type: watch.Added, Object: pod(name)} }
	bookmark := func(end bool) watch.Event {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}}
		if end {
			p.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
		}
		return watch.Event{Type: watch.Bookmark, Object: p}
	}
	// The LIST that a fallback reads answers with these pods.
	listed := []runtime.Object{pod("l0"), pod("l1")}
	for _, tc := range []struct {
		name string
		// fake: the bare fake clientset, which says it cannot stream.
		fake      bool
		watchErr  error
		events    []watch.Event
		closeAt   bool // the stream closes after its events
		want      []string
		wantReset int
		wantVerbs []string
	}{
		{name: "stream until the initial events end", events: []watch.Event{added("s0"), bookmark(false), added("s1"), bookmark(true), added("late")},
			want: []string{"s0", "s1"}, wantVerbs: []string{"watch"}},
		{name: "empty stream", events: []watch.Event{bookmark(true)}, wantVerbs: []string{"watch"}},
		{name: "client that cannot stream", fake: true, want: []string{"l0", "l1"}, wantVerbs: []string{"list"}},
		{name: "server rejects the stream", watchErr: apierrors.NewInvalid(schema.GroupKind{Kind: "ListOptions"}, "", nil),
			want: []string{"l0", "l1"}, wantVerbs: []string{"watch", "list"}},
		{name: "no RBAC to watch", watchErr: apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil),
			want: []string{"l0", "l1"}, wantVerbs: []string{"watch", "list"}},
		{name: "stream closes early", events: []watch.Event{added("s0")}, closeAt: true,
			want: []string{"s0", "l0", "l1"}, wantReset: 1, wantVerbs: []string{"watch", "list"}},
		{name: "error event", events: []watch.Event{added("s0"), {Type: watch.Error, Object: &apierrors.NewResourceExpired("too old").ErrStatus}},
			want: []string{"s0", "l0", "l1"}, wantReset: 1, wantVerbs: []string{"watch", "list"}},
		{name: "change before the end: not a streaming server", events: []watch.Event{{Type: watch.Modified, Object: pod("s0")}},
			want: []string{"l0", "l1"}, wantVerbs: []string{"watch", "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testcluster.New(testcluster.Options{Objects: listed})
			c.Kube.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
				if tc.watchErr != nil {
					return true, nil, tc.watchErr
				}
				w := watch.NewFakeWithChanSize(len(tc.events), false)
				for _, e := range tc.events {
					w.Action(e.Type, e.Object)
				}
				if tc.closeAt {
					w.Stop()
				}
				return true, w, nil
			})
			var client kubernetes.Interface = streamingClient{c.Kube}
			if tc.fake {
				client = c.Kube
			}
			var got []string
			resets := 0
			err := EachPodIn(context.Background(), client, "", "status.phase!=Failed", func(p *corev1.Pod) { got = append(got, p.Name) }, func() { resets++ })
			if err != nil {
				t.Fatal(err)
			}
			var verbs []string
			for _, a := range c.Kube.Actions() {
				verbs = append(verbs, a.GetVerb())
				if w, ok := a.(k8stesting.WatchActionImpl); ok && w.WatchRestrictions.Fields.String() != "status.phase!=Failed" {
					t.Errorf("watch's field selector %q", w.WatchRestrictions.Fields)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pods handed over (-want +got):\n%s", diff)
			}
			if resets != tc.wantReset {
				t.Errorf("%d resets, want %d", resets, tc.wantReset)
			}
			if diff := cmp.Diff(tc.wantVerbs, verbs); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEachPodInStreamCancelled(t *testing.T) {
	c := testcluster.New(testcluster.Options{})
	// A stream that never ends: the caller's context must still end the read.
	c.Kube.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, watch.NewFake(), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := EachPodIn(ctx, streamingClient{c.Kube}, "", "", func(*corev1.Pod) {}, func() {})
	if err != context.Canceled {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if n := len(c.Kube.Actions()); n > 1 {
		t.Errorf("%d requests after cancelling, want no LIST", n)
	}
}
