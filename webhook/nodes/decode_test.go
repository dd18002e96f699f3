package nodes

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// TestDecodeHeartbeat: the one-pass decoder reads the node's clock as policy.Heartbeat reads it
// from a decoded Node (newest lastHeartbeatTime; null and absent ones ignored).
func TestDecodeHeartbeat(t *testing.T) {
	at := func(s int64) metav1.Time { return metav1.NewTime(time.Unix(1_790_000_000+s, 0)) }
	for name, conds := range map[string][]corev1.NodeCondition{
		"none":         nil,
		"one":          {{Type: corev1.NodeReady, LastHeartbeatTime: at(5)}},
		"newest wins":  {{Type: corev1.NodeReady, LastHeartbeatTime: at(5)}, {Type: corev1.NodeMemoryPressure, LastHeartbeatTime: at(40)}, {Type: corev1.NodeDiskPressure, LastHeartbeatTime: at(-3)}},
		"null ignored": {{Type: corev1.NodeReady}, {Type: corev1.NodeMemoryPressure, LastHeartbeatTime: at(7)}},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: conds}}
		data, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNode(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(policy.NodeFrom(n).Heartbeat, got.Heartbeat); diff != "" {
			t.Errorf("%s: heartbeat (-policy.NodeFrom +decodeNode):\n%s", name, diff)
		}
	}
	if _, err := decodeNode([]byte(`{"status":{"conditions":[{"lastHeartbeatTime":"yesterday"}]}}`)); err == nil {
		t.Error("an unreadable heartbeat decoded")
	}
}
