package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// Patch writes the plan as a JSON patch (RFC 6902) against the pod the view was read from; nil
// when nothing is injected. It only adds: init containers are inserted at their index, the rest
// is appended, and a list or map the pod lacks is added whole. Nothing the pod already has is
// rewritten, so fields this build's API types do not know survive as sent. The patch grows with
// the pod (operations for each of its containers), so writing it stops when ctx is done.
func (pl *Plan) Patch(ctx context.Context) ([]byte, error) {
	if !pl.Changed() {
		return nil, nil
	}
	w := patchWriter{buf: make([]byte, 0, 4096)}
	w.buf = append(w.buf, '[')
	v := pl.view
	switch {
	case len(pl.inits) == 0:
	case len(v.InitContainers) == 0:
		w.add("/spec/initContainers", pl.inits)
	default:
		for i := range pl.inits {
			if pl.initAt == len(v.InitContainers) {
				w.add("/spec/initContainers/-", &pl.inits[i])
			} else {
				w.add("/spec/initContainers/"+strconv.Itoa(pl.initAt+i), &pl.inits[i])
			}
		}
	}
	for ci := range pl.env {
		if ci%checkEvery == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("writing the patch: %w", context.Cause(ctx))
		}
		prefix := "/spec/containers/" + strconv.Itoa(ci)
		appendAll(&w, prefix+"/env", len(v.Containers[ci].Env), pl.env[ci])
		appendAll(&w, prefix+"/volumeMounts", len(v.Containers[ci].Mounts), pl.mounts[ci])
	}
	appendAll(&w, "/spec/containers", len(v.Containers), pl.sidecars)
	appendAll(&w, "/spec/volumes", len(v.Volumes), pl.volumes)
	if len(pl.pullSecrets) > 0 {
		refs := make([]map[string]string, len(pl.pullSecrets))
		for i, n := range pl.pullSecrets {
			refs[i] = map[string]string{"name": n}
		}
		appendAll(&w, "/spec/imagePullSecrets", len(v.ImagePullSecrets), refs)
	}
	if v.Annotations == 0 {
		w.add("/metadata/annotations", map[string]string{names.SidecarStatusAnnotation: pl.status})
	} else {
		w.add("/metadata/annotations/"+jsonappend.PointerToken(names.SidecarStatusAnnotation), pl.status)
	}
	if len(w.buf) > MaxPatchBytes {
		w.err = ErrPatchTooLarge
	}
	switch {
	case errors.Is(w.err, ErrPatchTooLarge):
		return nil, fmt.Errorf("%w (the pod has %d containers)", w.err, len(v.Containers))
	case w.err != nil:
		return nil, fmt.Errorf("encoding the patch: %w", w.err)
	}
	w.buf[len(w.buf)-1] = ']' // the last operation's comma
	return w.buf, nil
}

// MaxPatchBytes bounds the patch. The patch grows with the pod (env and mounts for each of its
// containers), and a review can carry a pod of 3 MiB that the apiserver has not validated yet:
// 60,000 empty containers cost 250 MB of allocations and a 24 MB answer before this bound. The
// patch for a pod of 1,000 containers and the two usual templates is 0.3 MiB; 4 MiB leaves room
// for ten times that and for large templates, and keeps a review's memory to a few times it.
const MaxPatchBytes = 4 << 20

// ErrPatchTooLarge is a patch over MaxPatchBytes.
var ErrPatchTooLarge = fmt.Errorf("the injection's patch would exceed %d bytes", MaxPatchBytes)

// checkEvery is how many containers Patch writes between looks at its context: often enough to
// stop within a millisecond, rarely enough to cost nothing.
const checkEvery = 256

type patchWriter struct {
	buf []byte
	err error
}

// add writes one add operation and a comma.
func (w *patchWriter) add(path string, value any) {
	if w.err != nil {
		return
	}
	if len(w.buf) > MaxPatchBytes {
		w.err = ErrPatchTooLarge
		return
	}
	raw, err := json.Marshal(value)
	if err != nil {
		w.err = fmt.Errorf("%s: %w", path, err)
		return
	}
	w.buf = append(w.buf, `{"op":"add","path":`...)
	w.buf = jsonappend.String(w.buf, path)
	w.buf = append(w.buf, `,"value":`...)
	w.buf = append(w.buf, raw...)
	w.buf = append(w.buf, "},"...)
}

// appendAll appends items to the list at path, which has have elements: one operation per item
// onto an existing list, or one that adds the whole list.
func appendAll[T any](w *patchWriter, path string, have int, items []T) {
	switch {
	case len(items) == 0:
	case have == 0:
		w.add(path, items)
	default:
		for i := range items {
			w.add(path+"/-", &items[i])
		}
	}
}
