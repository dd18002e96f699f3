//go:build e2e

package history

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// stored is one stored allocatable of a node, as a watch delivered it.
type stored struct {
	// at is when the watch event arrived: within milliseconds of the write that stored it.
	at time.Time
	// cpu (millicores) and memory (bytes) are the stored allocatable.
	cpu, memory int64
	// applied is the applied record of the same write; usage its statistic, nil without one.
	applied policy.Applied
	usage   *policy.Statistic
	// hold is the applied record's pressure-guard hold ("" for none).
	hold string
	// requests is the node's published requests record (policy mode), "" without one.
	requests string
}

func (s stored) String() string {
	u := "no statistic"
	if s.usage != nil {
		u = s.usage.String()
	}
	h := ""
	if s.hold != "" {
		h = " hold=" + s.hold
	}
	return fmt.Sprintf("%s cpu=%dm memory=%dMi (%s)%s", s.at.Format("15:04:05.000"), s.cpu, s.memory>>20, u, h)
}

// recorder watches one node and keeps every version whose stored cpu or memory allocatable
// differs from the one before (the first version it sees counts as one), and the newest version.
type recorder struct {
	name string
	mu   sync.Mutex
	// changes are the stored allocatable changes, oldest first.
	changes []stored
	latest  stored
	seen    bool
	err     error
}

// record starts watching the node name (which need not exist yet) until the test ends.
func record(t *testing.T, name string) *recorder {
	t.Helper()
	cs := env.Client()
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// A RetryWatcher resumes from the last version it delivered, so no stored change is missed
	// when the apiserver ends a watch.
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return cs.CoreV1().Nodes().Watch(ctx, o)
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &recorder{name: name}
	for i := range list.Items {
		r.add(&list.Items[i])
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			switch n, ok := ev.Object.(*corev1.Node); {
			case ok && ev.Type != watch.Deleted:
				r.add(n)
			case ev.Type == watch.Error:
				r.mu.Lock()
				r.err = fmt.Errorf("watching node %s: %v", name, ev.Object)
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
		t.Logf("node %s, stored allocatable changes:\n%s", name, r.report())
	})
	return r
}

func (r *recorder) add(n *corev1.Node) {
	s := stored{at: time.Now(), cpu: n.Status.Allocatable.Cpu().MilliValue(), memory: n.Status.Allocatable.Memory().Value(),
		requests: n.Annotations[names.RequestsAnnotation]}
	if a, err := policy.ParseApplied(n.Annotations[names.AppliedAnnotation]); err == nil {
		s.applied, s.hold = a, a.Hold
		if st, err := policy.ParseStatistic(a.Usage); err == nil {
			s.usage = &st
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen || s.cpu != r.latest.cpu || s.memory != r.latest.memory {
		r.changes = append(r.changes, s)
	}
	r.latest, r.seen = s, true
}

// now is the newest version, and the watch's error if it failed.
func (r *recorder) now() (stored, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, r.seen, r.err
}

// history is a copy of the changes so far.
func (r *recorder) history() []stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stored(nil), r.changes...)
}

func (r *recorder) report() string {
	var b strings.Builder
	for _, s := range r.history() {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	return b.String()
}

// await waits until the newest version satisfies check (nil) and returns it; the test fails
// with check's last complaint after timeout.
func (r *recorder) await(t *testing.T, timeout time.Duration, what string, check func(stored) error) stored {
	t.Helper()
	var got stored
	harness.Eventually(t, timeout, fmt.Sprintf("node %s: %s", r.name, what), func() error {
		s, ok, err := r.now()
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("not seen yet")
		}
		if err := check(s); err != nil {
			return fmt.Errorf("%w (now %s)", err, s)
		}
		got = s
		return nil
	})
	return got
}
