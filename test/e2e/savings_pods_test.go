//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestPluginSavingsPods: through the real kubectl, savings --pods lists each node's pods under it
// with their requests and their usage from metrics-server's PodMetrics (kwok's usage
// annotations), and refuses -o csv.
func TestPluginSavingsPods(t *testing.T) {
	t.Parallel()
	const group = "savings-pods"
	const node = "plugin-savpods-a"
	pluginNode(t, node, "4", "8Gi", group)
	createPods(t, podOn(node, "plugin-savpods-busy", "1", "500m"), podOn(node, "plugin-savpods-idle", "500m", "50m"))

	type pod struct {
		Name, CPURequests string
		// CPUUsageNear says whether the usage is within 10% of kwok's annotation: metrics-server
		// computes it as a rate of kwok's counter, so it need not be exact.
		CPUUsageNear bool
	}
	want := []pod{{"plugin-savpods-busy", "1", true}, {"plugin-savpods-idle", "500m", true}}
	usage := map[string]int64{"plugin-savpods-busy": 500, "plugin-savpods-idle": 50}
	var got []pod
	// metrics-server has PodMetrics for a pod only after two scrapes of it.
	harness.Eventually(t, 120*time.Second, "PodMetrics of both pods in savings --pods", func() error {
		var r savings.SavingsReport
		out := mustOvercommit(t, "savings", "--pods", "-l", pluginLabel+"="+group, "-o", "json")
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return err
		}
		if len(r.Nodes) != 1 {
			return fmt.Errorf("%d nodes, want 1", len(r.Nodes))
		}
		got = nil
		for _, p := range r.Nodes[0].PodList {
			if p.CPU.Usage == nil {
				return fmt.Errorf("pod %s has no usage yet (%s)", p.Name, r.PodUsageUnavailable)
			}
			m := p.CPU.Usage.MilliValue()
			got = append(got, pod{p.Name, p.CPU.Requests.String(), m*10 >= usage[p.Name]*9 && m*10 <= usage[p.Name]*11})
		}
		if len(got) != len(want) {
			return fmt.Errorf("pods %+v", got)
		}
		return nil
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("savings --pods -o json, the node's podList (-want +got):\n%s", diff)
	}

	table := mustOvercommit(t, "savings", "--pods", "-l", pluginLabel+"="+group)
	for _, row := range []string{"\n" + node + " ", "\n  default/plugin-savpods-busy ", "\n  default/plugin-savpods-idle "} {
		if !strings.Contains(table, row) {
			t.Errorf("table has no row starting %q:\n%s", strings.TrimPrefix(row, "\n"), table)
		}
	}

	_, errOut, err := overcommit(t, "savings", "--pods", "-o", "csv")
	if want := "--pods cannot be used with -o csv"; err == nil || !strings.Contains(errOut, want) {
		t.Errorf("savings --pods -o csv: err %v, stderr %q, want it to contain %q", err, errOut, want)
	}
}
