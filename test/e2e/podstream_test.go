//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	pluginkube "github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/requests"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// recorder keeps the method and query of each request a client sends.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	kind := "list"
	if q.Get("watch") == "true" {
		kind = "watch"
		if q.Get("sendInitialEvents") == "true" {
			kind = "stream"
		}
	}
	resp, err := r.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, fmt.Sprintf("%s %d", kind, status))
	r.mu.Unlock()
	return resp, err
}

// TestPodStreamOnTheRealAPIServer: kube.EachPodIn reads pods as one streaming list from the
// real apiserver, honouring the field selector, and a user who may list but not watch pods gets
// the same pods by paginated LIST.
func TestPodStreamOnTheRealAPIServer(t *testing.T) {
	t.Parallel()
	const ns, lister = "e2e-podstream", "e2e-podstream-lister"
	ctx := context.Background()
	cs := kube(t)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: lister, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: lister, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: lister},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: lister}}}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Pods bound to a node of their own, and one that no node matches: the active-pods selector
	// (bound, neither succeeded nor failed) must leave that one out.
	const node = "e2e-podstream-node"
	isolatedNode(t, node, "4", "8Gi")
	var want []string
	for i := range 7 {
		p := podOn(node, fmt.Sprintf("stream-%d", i), "10m", "1m")
		p.Namespace = ns
		if i == 0 {
			p.Spec.NodeSelector = map[string]string{"e2e-podstream": "nowhere"}
		} else {
			p.Spec.NodeName = node
			want = append(want, p.Name)
		}
		harness.Eventually(t, 30*time.Second, "pod "+p.Name, func() error {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	}

	read := func(user string) (names, reqs []string) {
		cfg := env.RESTConfig()
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		rec := &recorder{}
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = pluginkube.EachPodIn(ctx, c, ns, requests.ActivePodsFieldSelector(""), func(p *corev1.Pod) {
			names = append(names, p.Name)
		}, func() { names = nil })
		if err != nil {
			t.Fatalf("as %s: %v", user, err)
		}
		sort.Strings(names)
		return names, rec.reqs
	}
	for _, tc := range []struct {
		user     string
		wantReqs []string
	}{
		{"", []string{"stream 200"}},
		{lister, []string{"stream 403", "list 200"}},
	} {
		names, reqs := read(tc.user)
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("as %q, pods read (-want +got):\n%s", tc.user, diff)
		}
		if diff := cmp.Diff(tc.wantReqs, reqs); diff != "" {
			t.Errorf("as %q, requests (-want +got):\n%s", tc.user, diff)
		}
	}
}
