//go:build e2e

package policyusage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestPluginInPolicyMode: the plugin detects policy mode, and what preview (local and
// --server) shows is what enable stores through the MutatingAdmissionPolicy, kept by kwok's
// heartbeats; savings reports it; disable restores the kubelet's values at once.
func TestPluginInPolicyMode(t *testing.T) {
	ctx := context.Background()
	cs := env.Client()
	node := cluster.KwokNode("plugin-policy", "3", "3839Mi")
	node.Spec.Taints = []corev1.Taint{{Key: "e2e.overcommit.dev/owner", Value: node.Name, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ratios := []string{"--cpu-ratio", "2.5", "--memory-ratio", "1.333333"}
	local := previewOf(t, append([]string{node.Name}, ratios...)...)
	server := previewOf(t, append([]string{node.Name, "--server"}, ratios...)...)
	if local.Mode != "policy" || server.Mode != "policy" {
		t.Fatalf("mode detected: local %q, server %q; want policy", local.Mode, server.Mode)
	}
	want := local.Items[0].After
	if diff := cmp.Diff(resources(want), resources(server.Items[0].After)); diff != "" {
		t.Errorf("preview --server differs from the local preview (-local +server):\n%s", diff)
	}
	if want.Allocatable.Cpu().String() != "7500m" {
		t.Errorf("preview: allocatable cpu %s, want 7500m", want.Allocatable.Cpu())
	}

	overcommit(t, append([]string{"enable", node.Name}, ratios...)...)
	check := func(when string) {
		t.Helper()
		n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(resources(want), resources(preview.Resources{Allocatable: n.Status.Allocatable, Capacity: n.Status.Capacity})); diff != "" {
			t.Errorf("%s: stored differs from the preview (-preview +stored):\n%s", when, diff)
		}
	}
	check("right after enable")
	time.Sleep(6 * time.Second) // three of kwok's heartbeats, which carry no allocatable
	check("after heartbeats")
	// savings reads the policy's records as it reads the webhook's: raw 3, stored 7.5, extra 4.5.
	var r savings.SavingsReport
	if err := json.Unmarshal([]byte(overcommit(t, "savings", "-l", "kubernetes.io/hostname="+node.Name, "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 1 {
		t.Fatalf("savings: %d nodes, want 1", len(r.Nodes))
	}
	got := r.Nodes[0]
	if s := got.CPU.Raw.String() + " " + got.CPU.Allocatable.String() + " " + got.CPU.Extra.String(); !got.Enabled || got.Policy != names.PolicyStatic || s != "3 7500m 4500m" {
		t.Errorf("savings row: enabled %v, policy %q, cpu raw/allocatable/extra %s; want true, static, 3 7500m 4500m", got.Enabled, got.Policy, s)
	}
	if again := previewOf(t, node.Name); len(again.Items[0].Patch) != 0 {
		t.Errorf("preview of the enabled node still wants a patch: %+v", again.Items[0].Patch)
	}

	overcommit(t, "disable", node.Name)
	n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Status.Allocatable.Cpu().String() + "/" + n.Status.Allocatable.Memory().String(); got != "3/3839Mi" {
		t.Errorf("after disable: allocatable %s, want 3/3839Mi", got)
	}
	for k := range n.Annotations {
		if strings.HasPrefix(k, names.Prefix) {
			t.Errorf("after disable: annotation %s left", k)
		}
	}
}

func resources(r preview.Resources) map[string]string {
	out := map[string]string{}
	for _, name := range policy.Resources {
		if q, ok := r.Allocatable[name]; ok {
			out["allocatable/"+string(name)] = q.String()
		}
		if q, ok := r.Capacity[name]; ok {
			out["capacity/"+string(name)] = q.String()
		}
	}
	return out
}

// overcommit runs the real plugin through the real kubectl.
func overcommit(t *testing.T, args ...string) string {
	t.Helper()
	return harness.MustKubectl(t, env, append([]string{"overcommit"}, args...)...)
}

// previewOf runs preview -o json and decodes it.
func previewOf(t *testing.T, args ...string) *preview.Preview {
	t.Helper()
	return harness.Preview(t, env, args...)
}
