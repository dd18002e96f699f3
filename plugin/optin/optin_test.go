package optin

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

func TestParseDryRun(t *testing.T) {
	for in, want := range map[string]DryRun{"": DryRunNone, "none": DryRunNone, "client": DryRunClient, "server": DryRunServer} {
		if got, err := ParseDryRun(in); err != nil || got != want {
			t.Errorf("ParseDryRun(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseDryRun("true"); err == nil {
		t.Error("--dry-run=true accepted")
	}
}

func TestPlanRestore(t *testing.T) {
	s := policy.DefaultSettings()
	enabled := testcluster.Node("a").Enabled(s, names.CPURatioAnnotation, "2", names.PolicyAnnotation, "static").Build()
	unreadable := testcluster.Node("b").Enabled(s).Build()
	unreadable.Annotations[names.RawAnnotation] = "{"
	forged := testcluster.Node("f").Enabled(s).Build()
	forged.Annotations[names.RawAnnotation] = `{"allocatable":{"cpu":"1000000","memory":"8Gi"},"capacity":{"cpu":"4","memory":"8Gi"}}`
	onlyLabel := testcluster.Node("c").Label(names.EnabledLabel, names.EnabledValue).Build()
	// Policy mode: the webhook publishes the node's usage target and requests on the node.
	published := testcluster.Node("e").Annotate(names.UsageTargetAnnotation, "cpu=1000m,memory=0").
		Annotate(names.RequestsAnnotation, "cpu=3000m,memory=1073741824").Enabled(s, names.PolicyAnnotation, "usage").Build()
	for _, tc := range []struct {
		name                   string
		node                   *corev1.Node
		wantMetadata, wantStat string
		wantWarning            string
		wantAfter              string
	}{{
		name:         "enabled",
		node:         enabled,
		wantMetadata: `{"metadata":{"annotations":{"overcommit.dev/cpu-ratio":null,"overcommit.dev/policy":null},"labels":{"overcommit.dev/enabled":null}}}`,
		wantStat:     `{"metadata":{"annotations":{"overcommit.dev/applied":null,"overcommit.dev/raw":null}},"status":{"allocatable":{"cpu":"4","memory":"8Gi"},"capacity":{"cpu":"4","memory":"8Gi"}}}`,
		wantAfter:    "4/8Gi",
	}, {
		name:         "published records of policy mode",
		node:         published,
		wantMetadata: `{"metadata":{"annotations":{"overcommit.dev/policy":null,"overcommit.dev/requests":null,"overcommit.dev/usage-target":null},"labels":{"overcommit.dev/enabled":null}}}`,
		wantStat:     `{"metadata":{"annotations":{"overcommit.dev/applied":null,"overcommit.dev/raw":null}},"status":{"allocatable":{"cpu":"4","memory":"8Gi"},"capacity":{"cpu":"4","memory":"8Gi"}}}`,
		wantAfter:    "4/8Gi",
	}, {
		name:         "unreadable raw record",
		node:         unreadable,
		wantMetadata: `{"metadata":{"labels":{"overcommit.dev/enabled":null}}}`,
		wantStat:     `{"metadata":{"annotations":{"overcommit.dev/applied":null,"overcommit.dev/raw":null}}}`,
		wantWarning:  "unreadable overcommit.dev/raw",
		wantAfter:    "6/8Gi",
	}, {
		name:         "raw record above its capacity",
		node:         forged,
		wantMetadata: `{"metadata":{"labels":{"overcommit.dev/enabled":null}}}`,
		wantStat:     `{"metadata":{"annotations":{"overcommit.dev/applied":null,"overcommit.dev/raw":null}}}`,
		wantWarning:  "cpu allocatable above its capacity",
		wantAfter:    "6/8Gi",
	}, {
		name:         "label only",
		node:         onlyLabel,
		wantMetadata: `{"metadata":{"labels":{"overcommit.dev/enabled":null}}}`,
		wantAfter:    "4/8Gi",
	}, {
		name:      "never enabled",
		node:      testcluster.Node("d").Build(),
		wantAfter: "4/8Gi",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := PlanRestore(tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantMetadata, string(r.Metadata)); diff != "" {
				t.Errorf("metadata patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantStat, string(r.Status)); diff != "" {
				t.Errorf("status patch (-want +got):\n%s", diff)
			}
			if got := strings.Join(r.Warnings, "\n"); !strings.Contains(got, tc.wantWarning) || (tc.wantWarning == "") != (got == "") {
				t.Errorf("warnings %q, want %q", got, tc.wantWarning)
			}
			after, err := disableLocally(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := after.Status.Allocatable.Cpu().String() + "/" + after.Status.Allocatable.Memory().String(); got != tc.wantAfter {
				t.Errorf("restored %s, want %s", got, tc.wantAfter)
			}
			for k := range after.Annotations {
				if strings.HasPrefix(k, names.Prefix) {
					t.Errorf("%s left behind", k)
				}
			}
			if policy.OptedIn(after.Labels) {
				t.Error("label left behind")
			}
			combined, err := combine(r)
			if err != nil {
				t.Fatal(err)
			}
			if (r.Metadata != nil || r.Status != nil) && len(combined) == 0 {
				t.Error("combined patch is empty")
			}
		})
	}
}

func TestOverbooking(t *testing.T) {
	s := policy.DefaultSettings()
	restore := func(n *corev1.Node) Restore {
		r, err := PlanRestore(n)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	memory := testcluster.Node("mem").Enabled(s, names.MemoryRatioAnnotation, "1.5").Build()
	// Its kubelet has already written the raw values back: disable lowers nothing.
	restored := testcluster.Node("restored").Enabled(s).Build()
	restored.Status.Allocatable = testcluster.Node("x").Build().Status.Allocatable
	restores := []Restore{
		restore(testcluster.Node("cpu").Enabled(s, names.CPURatioAnnotation, "2").Build()),
		restore(memory),
		restore(restored),
		restore(testcluster.Node("fits").Enabled(s, names.CPURatioAnnotation, "2").Build()),
		restore(testcluster.Node("plain").Build()),
	}
	loads := map[string]kube.Load{
		"cpu":      {Requests: requests.Amount{MilliCPU: 4001, Memory: 1 << 30}},
		"mem":      {Requests: requests.Amount{MilliCPU: 5000, Memory: 9 << 30}},
		"restored": {Requests: requests.Amount{MilliCPU: 9000}},
		"fits":     {Requests: requests.Amount{MilliCPU: 4000, Memory: 8 << 30}},
		"plain":    {Requests: requests.Amount{MilliCPU: 9000}},
	}
	got := Overbooking(restores, loads)
	want := []Overbooked{
		{Node: "cpu", Resource: corev1.ResourceCPU, Requested: 4001, Raw: 4000},
		{Node: "mem", Resource: corev1.ResourceCPU, Requested: 5000, Raw: 4000},
		{Node: "mem", Resource: corev1.ResourceMemory, Requested: 9 << 30, Raw: 8 << 30},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	msg := (&OverbookedError{Nodes: got}).Error()
	for _, line := range []string{
		"refusing to disable overcommit, nothing changed:",
		"  node/cpu: its pods request 4001m cpu, more than its raw allocatable 4",
		"  node/mem: its pods request 9Gi memory, more than its raw allocatable 8Gi",
		"use --force",
	} {
		if !strings.Contains(msg, line) {
			t.Errorf("message lacks %q:\n%s", line, msg)
		}
	}
}
