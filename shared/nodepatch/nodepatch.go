// Package nodepatch turns a policy result into the JSON patch the webhook returns for a Node.
// The paths are few and fixed, so the patch is built directly rather than by diffing whole
// objects: it is exact, small, and cheap on the webhook's hottest path.
package nodepatch

import (
	"encoding/json"
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Operations returns the JSON patch that turns node into what res says to store. It touches only
// status.allocatable and status.capacity (cpu, memory) and the raw/applied annotations, and is
// empty when the node already holds the result.
func Operations(node policy.Node, res policy.Result) ([]jsonpatch.Operation, error) {
	if res.Keep {
		return nil, nil
	}
	var ops []jsonpatch.Operation
	ops = resourceOps(ops, "/status/allocatable/", node.Allocatable, res.Allocatable)
	ops = resourceOps(ops, "/status/capacity/", node.Capacity, res.Capacity)
	if len(res.Applied.Allocatable) == 0 {
		// Nothing was computed (no cpu or memory reported yet): record nothing either.
		return ops, nil
	}

	want := map[string]string{names.RawAnnotation: res.RawRecord, names.AppliedAnnotation: res.AppliedRecord}
	if node.Annotations == nil {
		return append(ops, jsonpatch.NewOperation("add", "/metadata/annotations", want)), nil
	}
	for _, key := range []string{names.RawAnnotation, names.AppliedAnnotation} {
		if cur, ok := node.Annotations[key]; ok && cur == want[key] {
			continue
		}
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations/"+jsonappend.PointerToken(key), want[key]))
	}
	return ops, nil
}

// Marshal encodes operations as a JSON patch document, as encoding/json would; string values
// (all of Operations') are written directly, on every node review.
func Marshal(ops []jsonpatch.Operation) ([]byte, error) {
	b := make([]byte, 0, 128+256*len(ops))
	b = append(b, '[')
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"op":`...)
		b = jsonappend.String(b, op.Operation)
		b = append(b, `,"path":`...)
		b = jsonappend.String(b, op.Path)
		switch v := op.Value.(type) {
		case nil: // omitempty
		case string:
			b = append(b, `,"value":`...)
			b = jsonappend.String(b, v)
		default:
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("encoding the value at %s: %w", op.Path, err)
			}
			b = append(b, `,"value":`...)
			b = append(b, raw...)
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// resourceOps adds an op for each of cpu and memory whose value changes. A list the node did not
// report is left alone: there is nothing to overcommit in it on this write.
func resourceOps(ops []jsonpatch.Operation, prefix string, cur, next corev1.ResourceList) []jsonpatch.Operation {
	if len(cur) == 0 {
		return ops
	}
	for _, name := range policy.Resources {
		q, ok := next[name]
		if !ok {
			continue
		}
		if c, had := cur[name]; had && c.Cmp(q) == 0 {
			continue
		}
		// "add" sets an object member whether or not it exists.
		ops = append(ops, jsonpatch.NewOperation("add", prefix+jsonappend.PointerToken(string(name)), q.String()))
	}
	return ops
}
