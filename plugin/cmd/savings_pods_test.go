package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
)

// withPodMetrics adds PodMetrics for the fixture's pods but b2 (not sampled yet), shop-2 and the
// finished pod (which must not appear).
func withPodMetrics(o testcluster.Options) testcluster.Options {
	o.PodMetrics = []metricsv1beta1.PodMetrics{
		testcluster.PodMetrics("default", "a1", "250m", "256Mi"),
		testcluster.PodMetrics("default", "init", "100m", "300Mi"),
		testcluster.PodMetrics("default", "done", "1", "1Gi"),
		testcluster.PodMetrics("default", "b1", "900m", "1Gi"),
		testcluster.PodMetrics("default", "c1", "1500m", "3Gi"),
		testcluster.PodMetrics("shop", "shop-1", "1200m", "512Mi"),
		testcluster.PodMetrics("shop", "shop-3", "10m", "64Mi"),
	}
	return o
}

// forbidPodMetrics makes the PodMetrics LIST fail as with RBAC that allows only NodeMetrics.
func forbidPodMetrics(c *testcluster.Cluster) {
	c.Metrics.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}, "", errors.New("RBAC: access denied"))
	})
}

func TestGoldenSavingsPods(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   testcluster.Options
		forbid bool
		args   []string
	}{
		{name: "savings-pods", opts: withShop(withPodMetrics(withMetrics(withSettings()))), args: []string{"savings", "--pods"}},
		{name: "savings-pods-json", opts: withShop(withPodMetrics(withMetrics(withSettings()))), args: []string{"savings", "--pods", "-o", "json"}},
		{name: "savings-pods-yaml-namespace", opts: withShop(withPodMetrics(withMetrics(withSettings()))), args: []string{"savings", "--pods", "-n", "shop", "-o", "yaml"}},
		{name: "savings-pods-filtered", opts: withShop(withPodMetrics(withMetrics(withSettings()))), args: []string{"savings", "--pods", "--min-cpu-extra", "1"}},
		{name: "savings-pods-forbidden", opts: withShop(withPodMetrics(withMetrics(withSettings()))), forbid: true, args: []string{"savings", "--pods"}},
		{name: "savings-pods-forbidden-json", opts: withPodMetrics(withMetrics(withSettings())), forbid: true, args: []string{"savings", "--pods", "-l", "pool=batch", "-o", "json"}},
		{name: "savings-pods-no-metrics", opts: withSettings(), args: []string{"savings", "--pods"}},
		{name: "savings-pods-csv", opts: withSettings(), args: []string{"savings", "--pods", "-o", "csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(tc.opts)
			if tc.forbid {
				forbidPodMetrics(c)
			}
			stdout, stderr, err := runWithConfigFlags(t, c, tc.args...)
			compareGolden(t, tc.name, "$ kubectl overcommit "+strings.Join(tc.args, " ")+"\n"+transcript(stdout, stderr, err))
			if writes := testcluster.Writes(c.Kube); len(writes) > 0 {
				t.Errorf("the command changed the cluster:\n%s", strings.Join(writes, "\n"))
			}
		})
	}
}

// ReadPodUsage must follow continue tokens, keep to the namespace asked for, and sum a pod's
// containers.
func TestReadPodUsagePages(t *testing.T) {
	var items []metricsv1beta1.PodMetrics
	want := map[string]kube.PodUsageAmount{}
	for i := range 2*kube.PodPageSize + 3 {
		ns := "default"
		if i%2 == 1 {
			ns = "shop"
		}
		name := fmt.Sprintf("p%d", i)
		pm := testcluster.PodMetrics(ns, name, "1m", "1Ki")
		pm.Containers = append(pm.Containers, pm.Containers[0])
		items = append(items, pm)
		if ns == "shop" {
			want[kube.PodKey(ns, name)] = kube.PodUsageAmount{CPU: 2, Memory: 2048}
		}
	}
	c := testcluster.New(testcluster.Options{NodeMetrics: []metricsv1beta1.NodeMetrics{}, PodMetrics: items})
	got := kube.ReadPodUsage(t.Context(), c.Metrics, "shop")
	if diff := cmp.Diff(kube.PodUsage{Pods: want}, got); diff != "" {
		t.Errorf("ReadPodUsage (-want +got):\n%s", diff)
	}
	lists := 0
	for _, a := range c.Metrics.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			lists++
		}
	}
	// 5,001 shop pods in pages of 5,000.
	if lists != 2 {
		t.Errorf("PodMetrics LISTs = %d, want 2 pages", lists)
	}
}
