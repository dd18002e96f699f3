// Package pods is the pod admission handler: on Pod CREATE it injects the sidecar templates a pod
// asks for (annotation sidecar.overcommit.dev/inject). Unlike the node webhook it denies: a pod
// that asked for a sidecar it cannot get (unknown or invalid template, a name clash) is refused
// with a message naming the template and the clash, because a pod running without its sidecar is
// a silent failure that nobody notices until it matters.
package pods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/jsonscan"
	"github.com/overcommit-dev/overcommit/webhook/templates"
)

// Templates looks sidecar templates up by name (webhook/templates.Store).
type Templates interface {
	Get(name string) (*sidecar.Template, error)
}

// SystemNamespaces are never injected, whatever the webhook's namespaceSelector says.
var SystemNamespaces = []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// WarningPrefix starts every admission warning and denial message.
const WarningPrefix = "overcommit: "

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
func (h *Handler) Handle(_ context.Context, req *admission.Request) admission.Response {
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" || req.Operation != admissionv1.Create {
		// The rules are wrong; injecting into anything but a new pod would be wrong too, and
		// denying would block writes that never asked for us.
		h.Log.Warn("ignoring unexpected admission request; check the webhook's rules", "kind", req.Kind.String(),
			"subResource", req.SubResource, "operation", req.Operation, "uid", req.UID)
		resp := admission.Allowed(fmt.Sprintf("%sthe pod webhook only handles Pod CREATE, got %s %s; nothing injected", WarningPrefix, req.Operation, req.Kind.Kind))
		resp.Outcome = admission.OutcomeError
		return resp
	}
	// Pods created by controllers carry no namespace in the object: the request has it.
	ns := req.Namespace
	if h.excluded(ns) {
		return admission.Allowed()
	}
	// Most pods in an opted-in namespace ask for nothing: read only their annotation, in one
	// pass that skips the rest of the pod without decoding it.
	inject, err := injectAnnotation(req.Object)
	if err != nil {
		return h.deny(req, "decode", fmt.Sprintf("cannot decode the pod: %v", err))
	}
	if len(sidecar.Requested(map[string]string{names.SidecarInjectAnnotation: inject})) == 0 {
		return admission.Allowed()
	}

	var pod corev1.Pod
	if err := json.Unmarshal(req.Object, &pod); err != nil {
		return h.deny(req, "decode", fmt.Sprintf("cannot decode the pod: %v", err))
	}
	// managedFields are never changed and are most of the diff's work on a large pod.
	pod.ManagedFields = nil
	mutated := pod.DeepCopy()
	res, err := sidecar.InjectRequested(mutated, h.lookup)
	if err != nil {
		return h.deny(req, reason(err), fmt.Sprintf("pod %s not admitted: sidecar injection failed: %s", podName(ns, &pod), flatten(err)))
	}
	var warnings []string
	for _, s := range res.Skipped {
		warnings = append(warnings, fmt.Sprintf("%ssidecar template %q not injected: %s", WarningPrefix, s.Template, s.Reason))
		h.Metrics.skipped.WithLabelValues(s.Template).Inc()
	}
	if !res.Changed() {
		h.Log.Debug("nothing to inject", "pod", podName(ns, &pod), "present", res.Present, "skipped", len(res.Skipped), "uid", req.UID)
		return admission.Allowed(warnings...)
	}
	patch, err := diff(&pod, mutated)
	if err != nil {
		return h.deny(req, "patch", fmt.Sprintf("pod %s not admitted: %v", podName(ns, &pod), err))
	}
	if !req.IsDryRun() {
		for _, t := range res.Injected {
			h.Metrics.injected.WithLabelValues(t).Inc()
		}
	}
	h.Log.Info("sidecars injected", "pod", podName(ns, &pod), "templates", res.Injected, "present", res.Present,
		"dryRun", req.IsDryRun(), "uid", req.UID)
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
	for _, s := range SystemNamespaces {
		if ns == s {
			return true
		}
	}
	return false
}

func (h *Handler) deny(req *admission.Request, why, msg string) admission.Response {
	h.Metrics.denied.WithLabelValues(why).Inc()
	h.Log.Info("pod denied", "namespace", req.Namespace, "reason", why, "msg", msg, "dryRun", req.IsDryRun(), "uid", req.UID)
	code := int32(403)
	if why == "not_ready" || why == "patch" {
		code = 500
	}
	return admission.Denied(code, WarningPrefix+msg)
}

// diff computes the JSON patch from the pod as received to the mutated copy. Diffing typed
// copies, rather than building paths by hand, is what makes the patch correct on pods with no
// volumes, no init containers or no annotations.
//
// Both sides are typed, so fields this build's API types do not know (an apiserver newer than
// the webhook) never appear in the patch and survive as sent; the exception is the pod's own
// init containers, which shift down when injected ones go before them and are then rewritten
// field by field. Keep the webhook's k8s.io/api at the cluster's minor version.
func diff(orig, mutated *corev1.Pod) ([]byte, error) {
	a, err := json.Marshal(injectable(orig))
	if err != nil {
		return nil, fmt.Errorf("encoding the pod: %w", err)
	}
	b, err := json.Marshal(injectable(mutated))
	if err != nil {
		return nil, fmt.Errorf("encoding the injected pod: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		return nil, fmt.Errorf("computing the patch: %w", err)
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch: %w", err)
	}
	return patch, nil
}

// injectablePod is the part of a Pod that injection can change, at the same JSON paths and with
// the same omitempty rules as the Pod itself: diffing it yields the same patch as diffing whole
// pods, without encoding and comparing everything injection never touches.
type injectablePod struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Volumes          []corev1.Volume               `json:"volumes,omitempty"`
		InitContainers   []corev1.Container            `json:"initContainers,omitempty"`
		Containers       []corev1.Container            `json:"containers"`
		ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	} `json:"spec"`
}

func injectable(p *corev1.Pod) *injectablePod {
	var out injectablePod
	out.Metadata.Annotations = p.Annotations
	out.Spec.Volumes = p.Spec.Volumes
	out.Spec.InitContainers = p.Spec.InitContainers
	out.Spec.Containers = p.Spec.Containers
	out.Spec.ImagePullSecrets = p.Spec.ImagePullSecrets
	return &out
}

// injectAnnotation returns the value of the pod's inject annotation ("" when absent).
func injectAnnotation(pod []byte) (string, error) {
	var v string
	sc := jsonscan.New(pod)
	sc.Object(func(key []byte) {
		if string(key) != "metadata" {
			sc.Skip()
			return
		}
		sc.Object(func(key []byte) {
			if string(key) != "annotations" {
				sc.Skip()
				return
			}
			sc.Object(func(key []byte) {
				if string(key) == names.SidecarInjectAnnotation && sc.Peek() == '"' {
					v = sc.String()
				} else {
					sc.Skip()
				}
			})
		})
	})
	return v, sc.End()
}

// reason classifies an injection error for the denials metric.
func reason(err error) string {
	var conflict *sidecar.ConflictError
	switch {
	case errors.Is(err, templates.ErrNotReady):
		return "not_ready"
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

// podName names a pod for messages; controllers' pods have only a generateName at this point.
func podName(ns string, p *corev1.Pod) string {
	name := p.Name
	if name == "" && p.GenerateName != "" {
		name = p.GenerateName + "*"
	}
	return ns + "/" + name
}
