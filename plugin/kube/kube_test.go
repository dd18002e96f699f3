package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

func TestSelectionValidate(t *testing.T) {
	for _, tc := range []struct {
		s       Selection
		wantErr string
	}{
		{Selection{Names: []string{"a", "b"}}, ""},
		{Selection{Selector: "a=b,c notin (d)"}, ""},
		{Selection{All: true}, ""},
		{Selection{}, ""},
		{Selection{Names: []string{"a"}, All: true}, "not more than one"},
		{Selection{Selector: "a=b", All: true}, "not more than one"},
		{Selection{Selector: "a in (b"}, `invalid selector "a in (b"`},
		{Selection{Names: []string{""}}, "empty node name"},
	} {
		err := tc.s.Validate()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: got %v, want %q", tc.s, err, tc.wantErr)
		}
	}
}

func TestNodeName(t *testing.T) {
	for in, want := range map[string]string{"a": "a", "node/a": "a", "nodes/a": "a", "no/a": "a", "pod/a": "pod/a"} {
		if got := NodeName(in); got != want {
			t.Errorf("NodeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNodes(t *testing.T) {
	c := testcluster.New(testcluster.Options{Objects: []runtime.Object{
		testcluster.Node("b").Label("pool", "x").Build(), testcluster.Node("a").Label("pool", "x").Build(), testcluster.Node("c").Build()}})
	ctx := context.Background()
	names := func(ns []corev1.Node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	for _, tc := range []struct {
		s       Selection
		want    []string
		wantErr string
	}{
		{s: Selection{Names: []string{"c", "a", "c"}}, want: []string{"a", "c"}},
		{s: Selection{Selector: "pool=x"}, want: []string{"a", "b"}},
		{s: Selection{All: true}, want: []string{"a", "b", "c"}},
		{s: Selection{Names: []string{"a", "x"}}, wantErr: `node "x" not found`},
		{s: Selection{Names: []string{"y", "a", "x"}}, wantErr: `nodes "y", "x" not found`},
		{s: Selection{Selector: "pool=y"}, wantErr: `no nodes match the selector "pool=y"`},
	} {
		got, err := Nodes(ctx, c.Kube, tc.s)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%+v: error %v, want %q", tc.s, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, names(got)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.s, diff)
		}
	}
}

// TestLoads checks both ways of reading pods: a LIST per node for a few nodes or a small share
// of the cluster's, one LIST of all bound pods for more. Both count like the scheduler and skip
// finished and unbound pods.
func TestLoads(t *testing.T) {
	objs := []runtime.Object{
		testcluster.Pod("p1", "n1", "1", "1Gi"),
		testcluster.Pod("p2", "n1", "250m", "256Mi"),
		testcluster.Pod("p3", "n2", "2", "1Gi"),
		testcluster.Pod("unbound", "", "8", "8Gi"),
		testcluster.Pod("elsewhere", "other", "8", "8Gi"),
	}
	done := testcluster.Pod("done", "n1", "8", "8Gi")
	done.Status.Phase = corev1.PodFailed
	withInit := testcluster.Pod("init", "n2", "500m", "128Mi")
	withInit.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{
		Requests: testcluster.Pod("x", "", "1", "1Gi").Spec.Containers[0].Resources.Requests}}}
	objs = append(objs, done, withInit)

	want := map[string]Load{
		"n1": {Requests: requests.Amount{MilliCPU: 1250, Memory: 1280 << 20}, Pods: 2},
		"n2": {Requests: requests.Amount{MilliCPU: 3000, Memory: 2 << 30}, Pods: 2},
		"n3": {},
	}
	few := []string{"n1", "n2", "n3"}
	many := append([]string(nil), few...)
	for i := len(many); i <= perNodeListMax; i++ {
		many = append(many, fmt.Sprintf("empty-%d", i))
	}
	// A cluster of four times as many nodes as many names: a quarter of it, read node by node.
	withNodes := append([]runtime.Object(nil), objs...)
	for i := range perNodeShare * len(many) {
		withNodes = append(withNodes, testcluster.Node(fmt.Sprintf("cluster-%d", i)).Build())
	}
	for _, tc := range []struct {
		name      string
		objs      []runtime.Object
		nodes     []string
		wantLists int
	}{
		{"per node", objs, few, 3},
		{"one list", objs, many, 1},
		{"per node, a quarter of the cluster", withNodes, many, len(many)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testcluster.New(testcluster.Options{Objects: tc.objs})
			got, err := Loads(context.Background(), c.Kube, tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			for n := range got {
				if _, ok := want[n]; !ok && got[n] != (Load{}) {
					t.Errorf("node %s: %+v, want nothing", n, got[n])
				}
			}
			for n, w := range want {
				if diff := cmp.Diff(w, got[n]); diff != "" {
					t.Errorf("node %s (-want +got):\n%s", n, diff)
				}
			}
			lists := 0
			for _, a := range c.Kube.Actions() {
				if l, ok := a.(k8stesting.ListActionImpl); ok && l.Resource.Resource == "pods" {
					lists++
					if l.ListOptions.ResourceVersion != "" || l.ListOptions.Limit != PodPageSize {
						t.Errorf("list options %+v, want a paginated consistent read, limit %d", l.ListOptions, PodPageSize)
					}
				}
			}
			if lists != tc.wantLists {
				t.Errorf("%d pod LISTs, want %d", lists, tc.wantLists)
			}
		})
	}
}

func TestReadPerNode(t *testing.T) {
	for _, tc := range []struct {
		want, total int
		perNode     bool
	}{
		{1, 0, true},
		{perNodeListMax, 0, true},
		{perNodeListMax + 1, 0, false}, // the count unknown: one LIST
		{500, 5000, true},
		{1250, 5000, true},
		{1251, 5000, false},
		{5000, 5000, false},
		{perNodeListMax + 1, perNodeListMax + 1, false},
	} {
		if got := readPerNode(tc.want, tc.total); got != tc.perNode {
			t.Errorf("readPerNode(%d, %d) = %v, want %v", tc.want, tc.total, got, tc.perNode)
		}
	}
}

// TestLoadsPaginates serves pods in pages of two and lets the first continue token expire: the
// listing restarts once and counts every pod exactly once.
func TestLoadsPaginates(t *testing.T) {
	var pods []corev1.Pod
	for i := range 5 {
		pods = append(pods, *testcluster.Pod(fmt.Sprintf("p%d", i), "n", "100m", "1Mi"))
	}
	c := testcluster.New(testcluster.Options{})
	var seen []metav1.ListOptions
	expired := false
	c.Kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.ListActionImpl).ListOptions
		seen = append(seen, opts)
		start := 0
		if opts.Continue != "" {
			if !expired {
				expired = true
				return true, nil, apierrors.NewResourceExpired("continue token expired")
			}
			fmt.Sscan(opts.Continue, &start)
		}
		end := min(start+2, len(pods))
		list := &corev1.PodList{Items: pods[start:end]}
		if end < len(pods) {
			list.Continue = fmt.Sprint(end)
		}
		return true, list, nil
	})
	loads, err := Loads(context.Background(), c.Kube, []string{"n"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Load{Requests: requests.Amount{MilliCPU: 500, Memory: 5 << 20}, Pods: 5}, loads["n"]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var rvs []string
	for _, o := range seen {
		rvs = append(rvs, o.ResourceVersion+"|"+o.Continue)
	}
	// The restart begins again without a token; continued pages carry only their token.
	if diff := cmp.Diff([]string{"|", "|2", "|", "|2", "|4"}, rvs); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestLoadsFresh(t *testing.T) {
	c := testcluster.New(testcluster.Options{})
	if _, err := Loads(context.Background(), c.Kube, []string{"n"}); err != nil {
		t.Fatal(err)
	}
	l := c.Kube.Actions()[0].(k8stesting.ListActionImpl)
	if l.ListOptions.ResourceVersion != "" || l.ListOptions.FieldSelector != requests.ActivePodsFieldSelector("n") {
		t.Errorf("list options %+v, want a consistent read of node n's active pods", l.ListOptions)
	}
}

func TestReadSettings(t *testing.T) {
	custom := policy.DefaultSettings()
	custom.CPU.Max = policy.MustParseRatio("8")
	bad := testcluster.SettingsConfigMap(custom)
	bad.Data[policy.KeyDefaultCPURatio] = "0.5"
	forbidden := testcluster.New(testcluster.Options{})
	forbidden.Kube.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("configmaps"), names.SettingsConfigMap, fmt.Errorf("RBAC says no"))
	})
	for _, tc := range []struct {
		name        string
		c           *testcluster.Cluster
		wantMax     string
		wantSource  string
		wantMissing bool
		wantNotice  string
	}{
		{"valid", testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.SettingsConfigMap(custom)}}), "8", SettingsFromConfigMap, false, ""},
		{"missing", testcluster.New(testcluster.Options{}), "4", SettingsFromDefaults, true,
			"settings ConfigMap overcommit-system/overcommit-settings not found: overcommit leaves opted-in nodes unchanged until it exists"},
		{"invalid", testcluster.New(testcluster.Options{Objects: []runtime.Object{bad}}), "4", SettingsFromDefaults, false,
			"settings ConfigMap overcommit-system/overcommit-settings is invalid (default cpu ratio 0.5 must be between 1 and the max 8); overcommit uses the defaults"},
		{"unreadable", forbidden, "4", SettingsFromDefaults, false, "cannot read the settings ConfigMap overcommit-system/overcommit-settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ReadSettings(context.Background(), tc.c.Kube)
			if s.CPU.Max.String() != tc.wantMax || s.Source != tc.wantSource || s.Missing != tc.wantMissing ||
				!strings.Contains(s.Notice, tc.wantNotice) || (tc.wantNotice == "") != (s.Notice == "") {
				t.Errorf("got max %s source %s missing %v notice %q", s.CPU.Max, s.Source, s.Missing, s.Notice)
			}
		})
	}
}

func TestDetectNodePolicy(t *testing.T) {
	forbidden := testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.WebhookConfiguration(false)}})
	forbidden.Kube.PrependReactor("get", "mutatingadmissionpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("mutatingadmissionpolicies"), names.NodePolicyName, fmt.Errorf("RBAC says no"))
	})
	for _, tc := range []struct {
		name       string
		c          *testcluster.Cluster
		wantMode   string
		wantNotice string
	}{
		{"policy", testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.NodePolicy(), testcluster.WebhookConfiguration(false)}}), ModePolicy, ""},
		{"webhook", testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.WebhookConfiguration(true)}}), ModeWebhook, ""},
		{"both", testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.NodePolicy(), testcluster.WebhookConfiguration(true)}}), ModeBoth,
			"both the MutatingAdmissionPolicy overcommit-nodes and the webhook nodes.overcommit.dev of MutatingWebhookConfiguration overcommit are installed"},
		{"pod webhook only", testcluster.New(testcluster.Options{Objects: []runtime.Object{testcluster.WebhookConfiguration(false)}}), ModeNone,
			"no node policy is installed (neither the MutatingAdmissionPolicy overcommit-nodes nor the webhook nodes.overcommit.dev of MutatingWebhookConfiguration overcommit)"},
		{"nothing", testcluster.New(testcluster.Options{}), ModeNone, "no node policy is installed"},
		{"forbidden", forbidden, ModeUnknown, "cannot tell which node policy is installed (cannot read the MutatingAdmissionPolicy overcommit-nodes: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DetectNodePolicy(context.Background(), tc.c.Kube)
			if got.Mode != tc.wantMode || !strings.Contains(got.Notice, tc.wantNotice) || (tc.wantNotice == "") != (got.Notice == "") {
				t.Errorf("got %+v, want mode %s notice %q", got, tc.wantMode, tc.wantNotice)
			}
		})
	}
}

func TestServesMutatingAdmissionPolicy(t *testing.T) {
	for _, serves := range []bool{true, false} {
		c := testcluster.New(testcluster.Options{ServesMutatingAdmissionPolicy: serves})
		if got, err := ServesMutatingAdmissionPolicy(c.Kube); err != nil || got != serves {
			t.Errorf("serves %v: got %v, %v", serves, got, err)
		}
	}
	// A cluster without admissionregistration.k8s.io/v1 at all.
	c := testcluster.New(testcluster.Options{})
	c.Kube.Resources = nil
	if got, err := ServesMutatingAdmissionPolicy(c.Kube); err != nil || got {
		t.Errorf("group not served: got %v, %v", got, err)
	}
	broken := testcluster.New(testcluster.Options{})
	broken.Kube.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("discovery down")
	})
	if _, err := ServesMutatingAdmissionPolicy(broken.Kube); err == nil || !strings.Contains(err.Error(), "cannot discover admissionregistration.k8s.io/v1") {
		t.Errorf("discovery failing: %v", err)
	}
}

func TestReadUsage(t *testing.T) {
	served := testcluster.New(testcluster.Options{NodeMetrics: []metricsv1beta1.NodeMetrics{testcluster.NodeMetrics("a", "1", "1Gi")}})
	u := ReadUsage(context.Background(), served.Kube, served.Metrics)
	if cpu := u.Nodes["a"].Usage[corev1.ResourceCPU]; u.Unavailable != "" || cpu.String() != "1" {
		t.Errorf("served: %+v", u)
	}
	missing := testcluster.New(testcluster.Options{})
	if u := ReadUsage(context.Background(), missing.Kube, missing.Metrics); u.Unavailable != "metrics.k8s.io/v1beta1 is not served (is metrics-server installed?)" {
		t.Errorf("not served: %q", u.Unavailable)
	}
	failing := testcluster.New(testcluster.Options{NodeMetrics: []metricsv1beta1.NodeMetrics{}})
	failing.Metrics.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
	})
	if u := ReadUsage(context.Background(), failing.Kube, failing.Metrics); !strings.HasPrefix(u.Unavailable, "cannot list NodeMetrics") {
		t.Errorf("failing: %q", u.Unavailable)
	}
	broken := testcluster.New(testcluster.Options{})
	broken.Kube.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("discovery down")
	})
	if u := ReadUsage(context.Background(), broken.Kube, broken.Metrics); !strings.HasPrefix(u.Unavailable, "cannot discover metrics.k8s.io/v1beta1") {
		t.Errorf("discovery failing: %q", u.Unavailable)
	}
}

func TestWarnings(t *testing.T) {
	var printed []string
	h := WarningHandler{Print: printFunc(func(_ int, _, text string) { printed = append(printed, text) })}
	ctx, w := CollectWarnings(context.Background())
	h.HandleWarningHeaderWithContext(ctx, 299, "", "collected")
	h.HandleWarningHeaderWithContext(ctx, 199, "", "not a warning")
	h.HandleWarningHeaderWithContext(context.Background(), 299, "", "printed")
	if diff := cmp.Diff([]string{"collected"}, w.List()); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"printed"}, printed); diff != "" {
		t.Error(diff)
	}
}

type printFunc func(code int, agent, text string)

func (f printFunc) HandleWarningHeader(code int, agent, text string) { f(code, agent, text) }
