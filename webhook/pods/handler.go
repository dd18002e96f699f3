// Package pods is the pod admission handler: on Pod CREATE it injects the sidecar templates a pod
// asks for (annotation sidecar.overcommit.dev/inject). Unlike the node webhook it denies: a pod
// that asked for a sidecar it cannot get (unknown or invalid template, a name clash) is refused
// with a message naming the template and the clash, because a pod running without its sidecar is
// a silent failure that nobody notices until it matters.
package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/templates"
)

// Templates looks sidecar templates up by name (webhook/templates.Store).
type Templates interface {
	Get(name string) (*sidecar.Template, error)
}

// MaxMessageBytes bounds a denial message and the log line that repeats it. Messages quote the
// pod and its annotation, which whoever creates the pod writes (and, before the apiserver has
// validated the pod, may make megabytes long); the message ends up in kubectl's error line and
// in ReplicaSet events. The parts are clipped where they are built, so this cap is a backstop.
const MaxMessageBytes = 2 << 10

// maxLoggedField bounds a request field repeated in a log line (kind, operation, uid): the
// apiserver sends short ones, a caller that is not the apiserver may send anything.
const maxLoggedField = 128

// Handler is the pod webhook.
type Handler struct {
	// Templates may be nil (no cluster connection): pods that ask for a sidecar are then denied.
	Templates Templates
	// Namespace is the webhook's own namespace. It is never injected, so a broken template can
	// never stop the webhook's own pods from starting.
	Namespace string
	Metrics   *Metrics
	Log       *slog.Logger
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req *admission.Request) admission.Response {
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" || req.Operation != admissionv1.Create {
		// The rules are wrong; injecting into anything but a new pod would be wrong too, and
		// denying would block writes that never asked for us.
		h.Log.Warn("ignoring unexpected admission request; check the webhook's rules", "kind", clip(req.Kind.String()),
			"subResource", clip(req.SubResource), "operation", clip(string(req.Operation)), "uid", clip(string(req.UID)))
		resp := admission.Allowed(fmt.Sprintf("%sthe pod webhook only handles Pod CREATE, got %s %s; nothing injected", names.WarningPrefix,
			clip(string(req.Operation)), clip(req.Kind.Kind)))
		resp.Outcome = admission.OutcomeError
		return resp
	}
	// Pods created by controllers carry no namespace in the object: the request has it.
	ns := req.Namespace
	if h.excluded(ns) {
		return admission.Allowed()
	}
	// One pass over the pod reads what injection needs and skips the rest undecoded; the patch
	// is written from the plan, not found by diffing two pods.
	view, id, err := readView(req.Object)
	if err != nil {
		return h.deny(req, "decode", fmt.Sprintf("cannot decode the pod: %v", err))
	}
	// The annotation's limits are checked before it is split, so a hostile one costs no more
	// than a valid one.
	var requested []string
	if id.injectTooLong {
		err = sidecar.ErrRequestTooLong
	} else {
		requested, err = sidecar.ParseRequested(view.Inject)
	}
	if err != nil {
		return h.deny(req, reason(err), fmt.Sprintf("pod %s not admitted: %s", id.in(ns), flatten(err)))
	}
	if len(requested) == 0 {
		return admission.Allowed()
	}
	if id.statusTooLong {
		return h.deny(req, reason(sidecar.ErrStatusTooLong), fmt.Sprintf("pod %s not admitted: %v", id.in(ns), sidecar.ErrStatusTooLong))
	}
	templates, err := sidecar.LookupRequested(ctx, requested, h.lookup)
	if err != nil {
		return h.deny(req, reason(err), fmt.Sprintf("pod %s not admitted: sidecar injection failed: %s", id.in(ns), flatten(err)))
	}
	// The apiserver gives up on a review after the webhook's timeout: lookups, plan and patch
	// stop when it does, rather than spend CPU (shared with the node webhook) on an answer
	// nobody reads.
	plan, err := sidecar.NewPlan(ctx, view, templates)
	if err != nil {
		return h.deny(req, reason(err), fmt.Sprintf("pod %s not admitted: sidecar injection failed: %s", id.in(ns), flatten(err)))
	}
	var warnings []string
	for _, s := range plan.Skipped {
		warnings = append(warnings, fmt.Sprintf("%ssidecar template %q not injected: %s", names.WarningPrefix, s.Template, s.Reason))
		h.Metrics.skipped.WithLabelValues(s.Template).Inc()
	}
	if !plan.Changed() {
		if h.Log.Enabled(ctx, slog.LevelDebug) {
			h.Log.Debug("nothing to inject", "pod", id.in(ns), "present", plan.Present, "skipped", len(plan.Skipped), "uid", clip(string(req.UID)))
		}
		return admission.Allowed(warnings...)
	}
	patch, err := plan.Patch(ctx)
	if err != nil {
		why := "patch"
		switch {
		case reason(err) == "abandoned":
			why = "abandoned"
		case errors.Is(err, sidecar.ErrPatchTooLarge):
			why = "too_large"
		}
		return h.deny(req, why, fmt.Sprintf("pod %s not admitted: %v", id.in(ns), err))
	}
	if !req.IsDryRun() {
		for _, t := range plan.Injected {
			h.Metrics.injected.WithLabelValues(t).Inc()
		}
	}
	h.Log.Info("sidecars injected", "pod", id.in(ns), "templates", plan.Injected, "present", plan.Present,
		"dryRun", req.IsDryRun(), "uid", clip(string(req.UID)))
	return admission.Patched(patch, warnings...)
}

func (h *Handler) lookup(name string) (*sidecar.Template, error) {
	if h.Templates == nil {
		return nil, fmt.Errorf("%w: the webhook has no cluster connection to read sidecar templates from", templates.ErrNotReady)
	}
	return h.Templates.Get(name)
}

func (h *Handler) excluded(ns string) bool {
	if ns == "" || ns == h.Namespace {
		return true
	}
	return names.IsSystemNamespace(ns)
}

func (h *Handler) deny(req *admission.Request, why, msg string) admission.Response {
	msg = sidecar.Clip(msg, MaxMessageBytes-len(names.WarningPrefix))
	h.Metrics.denied.WithLabelValues(why).Inc()
	h.Log.Info("pod denied", "namespace", clip(req.Namespace), "reason", why, "msg", msg, "dryRun", req.IsDryRun(), "uid", clip(string(req.UID)))
	code := int32(403)
	if why == "not_ready" || why == "patch" || why == "abandoned" {
		code = 500
	}
	return admission.Denied(code, names.WarningPrefix+msg)
}

// reason classifies an injection error for the denials metric.
func reason(err error) string {
	var conflict *sidecar.ConflictError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "abandoned"
	case errors.Is(err, templates.ErrNotReady):
		return "not_ready"
	case errors.Is(err, sidecar.ErrBadRequest):
		return "invalid_annotation"
	case errors.Is(err, sidecar.ErrNotFound):
		return "unknown_template"
	case errors.Is(err, sidecar.ErrInvalid):
		return "invalid_template"
	case errors.As(err, &conflict):
		return "conflict"
	default:
		return "invalid_pod"
	}
}

// flatten puts joined errors on one line: the message ends up in a kubectl error line and in
// ReplicaSet events.
func flatten(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// clip bounds a request field repeated in a log line or message.
func clip(s string) string { return sidecar.Clip(s, maxLoggedField) }
