//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/plugin/check"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/forgedrecords"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// checkOf runs `kubectl overcommit check` over one group of nodes as JSON, and returns the
// report and whether the command exited non-zero.
func checkOf(t *testing.T, group string) (*check.Report, bool) {
	t.Helper()
	out, errOut, err := overcommit(t, "check", "-l", pluginLabel+"="+group, "-o", "json")
	var r check.Report
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("check -o json printed no report (%v; exit %v): %s\n%s", jerr, err, out, errOut)
	}
	if failed := err != nil; failed != (r.Summary.Failures > 0) {
		t.Fatalf("check exited with %v but reports %d failures\n%s", err, r.Summary.Failures, errOut)
	}
	return &r, err != nil
}

// failures lists the failed checks as "check node: message".
func failures(r *check.Report) []string {
	var out []string
	for _, res := range r.Results {
		if res.Status == check.Fail {
			out = append(out, strings.TrimSpace(res.Check+" "+res.Node)+": "+res.Message)
		}
	}
	return out
}

// wantOnlyFailure checks that the report fails exactly one check, of that name and node, saying
// what.
func wantOnlyFailure(t *testing.T, r *check.Report, checkName, node, says string) {
	t.Helper()
	got := failures(r)
	if len(got) != 1 || !strings.HasPrefix(got[0], strings.TrimSpace(checkName+" "+node)+": ") || !strings.Contains(got[0], says) {
		t.Errorf("want exactly one failure, %s %s saying %q; got %q", checkName, node, says, got)
	}
}

// TestPluginCheck runs `kubectl overcommit check` through the real kubectl on the webhook-mode
// install of the suite (the real webhook behind an ExternalName Service, with the records'
// ValidatingAdmissionPolicy of the install): a healthy install and node pass, and each of a
// stopped webhook, a node whose pods exceed its raw allocatable, a forged raw record and a
// missing metrics API fails with its own line and exit code 1. Not parallel: it stops the
// webhook and metrics-server, and the policy it installs applies to every node.
func TestPluginCheck(t *testing.T) {
	const group = "check"
	ctx := context.Background()
	forgedrecords.InstallValidation(t, kube(t), deploy.ModeWebhook)
	pluginNode(t, "plugin-check-a", "4", "8Gi", group)
	pluginNode(t, "plugin-check-u", "4", "8Gi", group)
	mustOvercommit(t, "enable", "plugin-check-a", "--cpu-ratio", "2")
	mustOvercommit(t, "enable", "plugin-check-u", "--cpu-ratio", "2", "--policy", "usage")
	waitCPU(t, "plugin-check-a", "8")
	bound := func(node, name, cpu string) *corev1.Pod {
		p := podOn(node, name, cpu, "100m")
		p.Spec.NodeName = node
		return p
	}
	createPods(t, bound("plugin-check-a", "plugin-check-a1", "1500m"), bound("plugin-check-a", "plugin-check-a2", "1500m"),
		bound("plugin-check-u", "plugin-check-u1", "1"))
	harness.Eventually(t, 2*time.Minute, "a NodeMetrics sample of the usage node", func() error {
		if r, _ := checkOf(t, group); r.Summary.Failures+r.Summary.Warnings > 0 {
			return fmt.Errorf("%d failures, %d warnings: %+v", r.Summary.Failures, r.Summary.Warnings, r.Results)
		}
		return nil
	})

	t.Run("healthy", func(t *testing.T) {
		r, failed := checkOf(t, group)
		if failed || r.Mode != "webhook" || r.OptedInNodes != 2 {
			t.Fatalf("want a passing check of 2 nodes in webhook mode, got mode %s, %d nodes, failures %q", r.Mode, r.OptedInNodes, failures(r))
		}
		for _, want := range []string{"mode", "webhook-configuration", "records-validation", "webhook-endpoints", "webhook-certificate",
			"settings", "metrics-api", "permissions", "autoscaler", "records", "restart-risk"} {
			found := false
			for _, res := range r.Results {
				found = found || (res.Check == want && res.Status == check.OK)
			}
			if !found {
				t.Errorf("no passing %s check in %+v", want, r.Results)
			}
		}
		// The text a person reads says the same, and exits 0.
		out := mustOvercommit(t, "check", "-l", pluginLabel+"="+group)
		if !strings.Contains(out, "ok    webhook-certificate: the certificate served at ") || !strings.Contains(out, " 0 failed") {
			t.Errorf("check's text output:\n%s", out)
		}
	})

	t.Run("stopped webhook", func(t *testing.T) {
		if err := env.StopWebhook(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.StartWebhook(context.Background()); err != nil {
				t.Fatalf("restarting the webhook: %v", err)
			}
		}()
		r, failed := checkOf(t, group)
		if !failed {
			t.Fatal("check passed with the webhook stopped")
		}
		wantOnlyFailure(t, r, "webhook-certificate", "", "cannot reach the webhook at ")
	})

	t.Run("node over its raw capacity", func(t *testing.T) {
		// 3 + 2 cpu on a node whose kubelet has 4: the scheduler sees 8, a restart admits 4.
		over := bound("plugin-check-a", "plugin-check-over", "2")
		createPods(t, over)
		defer func() {
			zero := int64(0)
			_ = kube(t).CoreV1().Pods("default").Delete(ctx, over.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}()
		r, failed := checkOf(t, group)
		if !failed {
			t.Fatal("check passed with pods over the raw allocatable")
		}
		wantOnlyFailure(t, r, "restart-risk", "plugin-check-a", "would reject 1 of 3 pods")
		for _, res := range r.Results {
			if res.Check == "restart-risk" && res.Node != "" && (len(res.Pods) != 1 || res.Pods[0] != "default/plugin-check-over (OutOfcpu)") {
				t.Errorf("rejected pods: %q, want the newest, default/plugin-check-over (OutOfcpu)", res.Pods)
			}
		}
	})

	t.Run("forged record", func(t *testing.T) {
		// A status write may carry the records (the ValidatingAdmissionPolicy guards the node
		// object, not its status, which only nodes and controllers write): the raw cpu the
		// issue measured, which the node policy then multiplies.
		forged := `{"metadata":{"annotations":{"` + names.RawAnnotation + `":"{\"allocatable\":{\"cpu\":\"1000000\",\"memory\":\"8Gi\"},\"capacity\":{\"cpu\":\"4\",\"memory\":\"8Gi\"}}"}}}`
		if _, err := kube(t).CoreV1().Nodes().Patch(ctx, "plugin-check-u", types.MergePatchType, []byte(forged), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatal(err)
		}
		r, failed := checkOf(t, group)
		if !failed {
			t.Fatal("check passed with a forged raw record")
		}
		wantOnlyFailure(t, r, "records", "plugin-check-u", "claims cpu allocatable 1M above its capacity 4")
		// disable does not restore what the forged record claims.
		if _, errOut := mustOvercommitErr(t, "disable", "plugin-check-u", "--force"); !strings.Contains(errOut, "cpu allocatable above its capacity") {
			t.Errorf("disable of a node with a forged raw record warned:\n%s", errOut)
		}
		if err := kube(t).CoreV1().Nodes().Delete(ctx, "plugin-check-u", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("missing metrics API", func(t *testing.T) {
		pluginNode(t, "plugin-check-m", "4", "8Gi", group)
		mustOvercommit(t, "enable", "plugin-check-m", "--cpu-ratio", "2", "--policy", "usage")
		if err := env.StopMetricsServer(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.StartMetricsServer(context.Background()); err != nil {
				t.Fatalf("restarting metrics-server: %v", err)
			}
		}()
		harness.Eventually(t, time.Minute, "check failing on metrics.k8s.io", func() error {
			r, failed := checkOf(t, group)
			if !failed {
				return fmt.Errorf("check still passes")
			}
			wantOnlyFailure(t, r, "metrics-api", "", "1 node on the usage policy, but ")
			return nil
		})
	})
}
