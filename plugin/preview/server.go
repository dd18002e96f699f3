package preview

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// Server asks the apiserver what it would store after the change: a dry-run merge patch of the
// status subresource that sets the label and annotations. The status subresource stores metadata
// changes and is what the node policy intercepts, so the answer includes its patch (the webhook
// honours dry runs: sideEffects None; so does a MutatingAdmissionPolicy), computed from the
// settings it reads. mode is the node-policy mode installed (kube.DetectNodePolicy), for the hint
// when no policy acted.
func Server(ctx context.Context, c kubernetes.Interface, n *corev1.Node, change Change, mode string) (Item, error) {
	patch, err := change.MergePatch()
	if err != nil {
		return Item{}, err
	}
	ctx, warnings := kube.CollectWarnings(ctx)
	answer, err := c.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch,
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: names.PluginFieldManager}, "status")
	if err != nil {
		return Item{}, fmt.Errorf("dry-run status write of node %q: %w", n.Name, err)
	}
	return serverItem(n, change.Apply(n), answer, mode, warnings.List())
}
