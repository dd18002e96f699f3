package nodes

import (
	"bytes"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/jsonscan"
)

// node is the part of a Node the policy reads, with only overcommit's own labels and annotations.
// Decoding only these fields skips the images, conditions and everything else that makes up most
// of a Node's bytes.
type node = policy.Node

// decodeNode reads a Node's JSON in one pass. Field names match exactly, as the apiserver writes
// them: encoding/json's case-insensitive matching would read "Metadata" as metadata, and a patch
// computed from it would not apply to the real document.
func decodeNode(data []byte) (node, error) {
	var n node
	s := jsonscan.New(data)
	if s.Peek() != '{' {
		return n, jsonscan.ErrNotObject
	}
	s.Object(func(key []byte) {
		switch string(key) {
		case "metadata":
			s.Object(func(key []byte) {
				switch string(key) {
				case "name":
					n.Name = s.String()
				case "labels":
					// Only the opt-in label matters; a node's other labels are not kept.
					n.Labels = readStringMap(s, func(k []byte) bool { return string(k) == names.EnabledLabel })
				case "annotations":
					// Only overcommit's own annotations are read; the map still exists (empty)
					// when the node has annotations, so the patch adds to it rather than creating it.
					n.Annotations = readStringMap(s, func(k []byte) bool { return bytes.HasPrefix(k, prefix) })
				default:
					s.Skip()
				}
			})
		case "status":
			s.Object(func(key []byte) {
				switch string(key) {
				case "allocatable":
					n.Allocatable = readResourceList(s)
				case "capacity":
					n.Capacity = readResourceList(s)
				case "conditions":
					readConditions(s, &n)
				default:
					s.Skip()
				}
			})
		default:
			s.Skip()
		}
	})
	if err := s.End(); err != nil {
		return node{}, err
	}
	return n, nil
}

var prefix = []byte(names.Prefix)

// readConditions reads the conditions as policy.NodeFrom does: the newest lastHeartbeatTime
// (policy.Heartbeat), in whole seconds, zero when none has one; and the pressure conditions
// (policy.Conditions).
func readConditions(s *jsonscan.Scanner, n *node) {
	if s.Null() {
		return
	}
	var newest time.Time
	s.Array(func() {
		var typ, status string
		var since time.Time
		s.Object(func(k []byte) {
			switch string(k) {
			case "lastHeartbeatTime":
				if t := readTime(s, "lastHeartbeatTime"); t.After(newest) {
					newest = t
				}
			case "lastTransitionTime":
				since = readTime(s, "lastTransitionTime")
			case "type":
				typ = s.String()
			case "status":
				status = s.String()
			default:
				s.Skip()
			}
		})
		c := policy.Condition{True: status == string(corev1.ConditionTrue), Since: since.Truncate(time.Second)}
		switch corev1.NodeConditionType(typ) {
		case corev1.NodeMemoryPressure:
			n.MemoryPressure = c
		case corev1.NodePIDPressure:
			n.PIDPressure = c
		}
	})
	n.Heartbeat = newest.Truncate(time.Second)
}

// readTime reads an RFC 3339 time as metav1.Time writes it; zero for null.
func readTime(s *jsonscan.Scanner, field string) time.Time {
	v := s.StringOrNull()
	if v == "" || s.Err() != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		s.Fail(fmt.Errorf("%s %q: %w", field, v, err))
		return time.Time{}
	}
	return t
}

// readStringMap reads the members of a map of strings that keep selects; null reads as nil, an
// object as a non-nil map even when nothing is kept.
func readStringMap(s *jsonscan.Scanner, keep func(key []byte) bool) map[string]string {
	if s.Null() {
		return nil
	}
	m := map[string]string{}
	s.Object(func(k []byte) {
		if keep(k) {
			m[string(k)] = s.String()
		} else {
			s.Skip()
		}
	})
	return m
}

// readResourceList parses status quantities without a bound of its own, unlike the annotations:
// the apiserver decoded the write into a typed Node before admission (paying ParseQuantity's cost
// for whatever its writer sent, and rounding up to nano, so no exponent below -9 survives:
// "1e-2000000000" arrives as "1e-9"), and the review carries its canonical re-encoding, which
// costs no more to parse again than the apiserver's own decode and encode of the same write.
// Only writers of nodes/status (kubelets, node controllers) can put a value there.
func readResourceList(s *jsonscan.Scanner) corev1.ResourceList {
	if s.Null() {
		return nil
	}
	l := corev1.ResourceList{}
	s.Object(func(k []byte) {
		v := s.String()
		if s.Err() != nil {
			return
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			s.Fail(fmt.Errorf("quantity %s=%q: %w", k, v, err))
			return
		}
		l[corev1.ResourceName(k)] = q
	})
	return l
}
