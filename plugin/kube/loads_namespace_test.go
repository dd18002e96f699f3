package kube

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

// TestLoadsIn counts one namespace's pods, both ways of reading, and LISTs only that namespace.
func TestLoadsIn(t *testing.T) {
	shop := testcluster.Pod("s1", "n1", "500m", "256Mi")
	shop.Namespace = "shop"
	objs := []runtime.Object{shop, testcluster.Pod("d1", "n1", "1", "1Gi"), testcluster.Pod("d2", "n2", "2", "1Gi")}
	few := []string{"n1", "n2"}
	many := append([]string(nil), few...)
	for i := len(many); i <= perNodeListMax; i++ {
		many = append(many, fmt.Sprintf("empty-%d", i))
	}
	for _, tc := range []struct {
		name      string
		nodes     []string
		namespace string
		want      map[string]Load
	}{
		{"per node, shop", few, "shop", map[string]Load{"n1": {Requests: requests.Amount{MilliCPU: 500, Memory: 256 << 20}, Pods: 1}}},
		{"one list, shop", many, "shop", map[string]Load{"n1": {Requests: requests.Amount{MilliCPU: 500, Memory: 256 << 20}, Pods: 1}}},
		{"per node, all", few, "", map[string]Load{"n1": {Requests: requests.Amount{MilliCPU: 1500, Memory: 1280 << 20}, Pods: 2},
			"n2": {Requests: requests.Amount{MilliCPU: 2000, Memory: 1 << 30}, Pods: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testcluster.New(testcluster.Options{Objects: objs})
			got, err := LoadsIn(context.Background(), c.Kube, tc.nodes, tc.namespace)
			if err != nil {
				t.Fatal(err)
			}
			nonZero := map[string]Load{}
			for n, l := range got {
				if l != (Load{}) {
					nonZero[n] = l
				}
			}
			if diff := cmp.Diff(tc.want, nonZero); diff != "" {
				t.Errorf("loads (-want +got):\n%s", diff)
			}
			for _, a := range c.Kube.Actions() {
				if l, ok := a.(k8stesting.ListActionImpl); ok && l.Resource.Resource == "pods" && l.Namespace != tc.namespace {
					t.Errorf("listed pods in namespace %q, want %q", l.Namespace, tc.namespace)
				}
			}
		})
	}
}
