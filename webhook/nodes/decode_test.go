package nodes

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// TestDecodeHeartbeat: the one-pass decoder reads the node's clock and its pressure conditions
// as policy.NodeFrom reads them from a decoded Node (newest lastHeartbeatTime, null and absent
// ones ignored; MemoryPressure and PIDPressure with their lastTransitionTime).
func TestDecodeHeartbeat(t *testing.T) {
	at := func(s int64) metav1.Time { return metav1.NewTime(time.Unix(1_790_000_000+s, 0)) }
	for name, conds := range map[string][]corev1.NodeCondition{
		"none":         nil,
		"one":          {{Type: corev1.NodeReady, LastHeartbeatTime: at(5)}},
		"newest wins":  {{Type: corev1.NodeReady, LastHeartbeatTime: at(5)}, {Type: corev1.NodeMemoryPressure, LastHeartbeatTime: at(40)}, {Type: corev1.NodeDiskPressure, LastHeartbeatTime: at(-3)}},
		"null ignored": {{Type: corev1.NodeReady}, {Type: corev1.NodeMemoryPressure, LastHeartbeatTime: at(7)}},
		"pressure": {{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, LastHeartbeatTime: at(9), LastTransitionTime: at(-30)},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, LastTransitionTime: at(-60)}, {Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue}},
		"unknown status": {{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionUnknown, LastTransitionTime: at(1)}},
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
		want := policy.NodeFrom(n)
		if diff := cmp.Diff([]any{want.Heartbeat, want.MemoryPressure, want.PIDPressure}, []any{got.Heartbeat, got.MemoryPressure, got.PIDPressure}); diff != "" {
			t.Errorf("%s: heartbeat and pressure (-policy.NodeFrom +decodeNode):\n%s", name, diff)
		}
	}
	if _, err := decodeNode([]byte(`{"status":{"conditions":[{"lastHeartbeatTime":"yesterday"}]}}`)); err == nil {
		t.Error("an unreadable heartbeat decoded")
	}
	if _, err := decodeNode([]byte(`{"status":{"conditions":[{"type":"MemoryPressure","lastTransitionTime":"soon"}]}}`)); err == nil {
		t.Error("an unreadable transition time decoded")
	}
}

// TestStatusQuantitiesArriveCanonical backs readResourceList's missing bound: whatever spelling
// a writer sends, the apiserver decodes it (as json.Unmarshal does here) and hands admission its
// canonical encoding, in which no exponent is below nano and tiny values are rounded up.
func TestStatusQuantitiesArriveCanonical(t *testing.T) {
	for sent, want := range map[string]string{
		"1e-20000":                       "1e-9",
		"0.000000000000000000001":        "1n",
		"1e-9":                           "1e-9",
		"3900m":                          "3900m",
		"1e400":                          "10e399",
		"8e15":                           "8e15",
		"123456789012345678901234567890": "123456789012345678901234567890",
		"7Ei":                            "7Ei",
	} {
		var q resource.Quantity
		if err := json.Unmarshal([]byte(`"`+sent+`"`), &q); err != nil {
			t.Fatalf("%s: %v", sent, err)
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(`"`+want+`"`, string(b)); diff != "" {
			t.Errorf("%s as the apiserver encodes it (-want +got):\n%s", sent, diff)
		}
		n, err := decodeNode([]byte(`{"status":{"allocatable":{"cpu":` + string(b) + `}}}`))
		if err != nil {
			t.Fatalf("%s: %v", sent, err)
		}
		if got := n.Allocatable[corev1.ResourceCPU]; got.Cmp(q) != 0 {
			t.Errorf("%s decoded as %s, want %s", sent, got.String(), q.String())
		}
	}
}
