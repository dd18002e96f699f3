// Package nodes is the node admission handler: it rewrites the allocatable and capacity of
// opted-in nodes by the shared policy. It never denies: every problem allows the write unchanged
// with a warning and a metric, because blocking a kubelet's status write hurts the node.
package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/nodepatch"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// UsageSource answers the usage policy's and the pressure guard's questions from in-memory
// caches only.
type UsageSource interface {
	// Sample returns the node's summed pod requests and its usage statistic, or nil and why not.
	Sample(nodeName string) (*policy.UsageSample, string)
	// Requests returns the summed requests of the pods bound to the node, or nil and why not.
	Requests(nodeName string) (corev1.ResourceList, string)
}

// Handler is the node webhook.
type Handler struct {
	// Settings holds the settings as last read from the settings ConfigMap (webhook/settings);
	// nil, or nothing stored yet, counts as missing.
	Settings *atomic.Pointer[settings.Snapshot]
	// Usage may be nil (no cluster connection): the usage policy then always falls back.
	Usage   UsageSource
	Metrics *Metrics
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req *admission.Request) admission.Response {
	// Checked first: the arguments would be boxed into interfaces on every review otherwise.
	debug := h.Log.Enabled(ctx, slog.LevelDebug)
	if debug {
		h.Log.DebugContext(ctx, "node review", "node", req.Name, "writer", req.UserInfo.Username, "operation", req.Operation)
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Node" {
		return h.failOpen(req, "unexpected", fmt.Sprintf("expected a Node, got %s; check the webhook's rules", req.Kind.String()))
	}
	n, err := decodeNode(req.Object)
	if err != nil {
		return h.failOpen(req, "decode", fmt.Sprintf("cannot decode node: %v", err))
	}
	if !policy.OptedIn(n.Labels) {
		return admission.Allowed()
	}
	if n.Name == "" {
		n.Name = req.Name
	}
	// The same rules as policy mode, where the ConfigMap is the policy's params: no settings, no
	// change; invalid settings, the defaults.
	snap := h.settings()
	var warnings []string
	switch snap.State {
	case settings.Valid:
	case settings.Invalid:
		h.Metrics.settings.WithLabelValues(string(settings.Invalid)).Inc()
		warnings = append(warnings, names.WarningPrefix+snap.Problem)
	default:
		h.Metrics.settings.WithLabelValues(string(settings.Missing)).Inc()
		if debug {
			h.Log.Debug("node left unchanged", "node", n.Name, "writer", req.UserInfo.Username, "problem", snap.Problem)
		}
		return admission.Allowed(names.WarningPrefix + snap.Problem + "; node left unchanged")
	}
	in := policy.Input{
		Node:   n,
		Writer: req.UserInfo.Username,
		Now:    h.now(),
	}
	if req.OldObject != nil {
		old, err := decodeNode(req.OldObject)
		if err != nil {
			return h.failOpen(req, "decode", fmt.Sprintf("cannot decode the stored node: %v", err))
		}
		in.Update, in.OldAllocatable = true, old.Allocatable
	}
	h.usageInputs(&in)
	res := policy.Compute(in, snap.Settings)
	if res.Fallback {
		h.Metrics.fallbacks.Inc()
	}
	ops, err := nodepatch.Operations(in.Node, res)
	if err != nil {
		return h.failOpen(req, "patch", err.Error())
	}
	patch, err := nodepatch.Marshal(ops)
	if err != nil {
		return h.failOpen(req, "patch", err.Error())
	}
	warnings = append(warnings, prefixed(res.Warnings)...)
	if len(ops) > 0 && !req.IsDryRun() {
		h.Metrics.patched.WithLabelValues(res.Applied.Policy).Inc()
	}
	if debug {
		h.Log.Debug("node reviewed", "node", in.Node.Name, "writer", in.Writer, "operation", req.Operation,
			"ops", len(ops), "reason", res.Reason, "warnings", res.Warnings, "dryRun", req.IsDryRun())
	}
	return admission.Patched(patch, warnings...)
}

// usageInputs fills what the policy reads from the caches: the usage policy's sample, and the
// pods' requests for the usage policy and for the pressure guard of a node under pressure (of
// either policy). Other nodes cost no cache read.
func (h *Handler) usageInputs(in *policy.Input) {
	usage := false
	if pol, _ := policy.ForNode(in.Node.Annotations); pol == names.PolicyUsage {
		usage = true
		if h.Usage == nil {
			in.UsageUnavailable = "the webhook has no cluster connection for usage data"
		} else if in.Usage, in.UsageUnavailable = h.Usage.Sample(in.Node.Name); in.Usage != nil {
			in.Requests = in.Usage.Requests
		}
	}
	if h.Usage == nil || in.Requests != nil || !usage && !mayHold(in.Node) {
		return
	}
	// Unknown requests (nil) leave the policy to the published record, then to raw.
	in.Requests, _ = h.Usage.Requests(in.Node.Name)
}

// mayHold says whether the pressure guard may hold the node: a pressure condition is True, or
// turned False less than the cool-down ago by the node's clock. The guard itself also asks
// whether the previous write was held; answering a little more often than it needs costs one
// cache read.
func mayHold(n policy.Node) bool {
	active := func(c policy.Condition) bool {
		return c.True || !c.Since.IsZero() && !n.Heartbeat.IsZero() && n.Heartbeat.Sub(c.Since) < policy.PressureCooldown
	}
	return active(n.MemoryPressure) || active(n.PIDPressure)
}

// failOpen allows the write unchanged and says why: the node webhook never blocks a node.
func (h *Handler) failOpen(req *admission.Request, kind, msg string) admission.Response {
	h.Metrics.errors.WithLabelValues(kind).Inc()
	h.Log.Warn("allowing node write unchanged", "node", req.Name, "uid", req.UID, "problem", kind, "err", msg)
	resp := admission.Allowed(names.WarningPrefix + msg + "; node left unchanged")
	resp.Outcome = admission.OutcomeError
	return resp
}

// OnPanic is the admission.Webhook hook for this handler: allow unchanged.
func (h *Handler) OnPanic(req *admission.Request) admission.Response {
	return h.failOpen(req, "panic", "internal error")
}

// missing is what a handler without a settings source reads.
var missing = &settings.Snapshot{State: settings.Missing, Problem: "no settings source"}

func (h *Handler) settings() *settings.Snapshot {
	if h.Settings == nil {
		return missing
	}
	if s := h.Settings.Load(); s != nil {
		return s
	}
	return missing
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func prefixed(ws []string) []string {
	if len(ws) == 0 {
		return nil
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = names.WarningPrefix + w
	}
	return out
}
