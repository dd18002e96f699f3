package preview

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
)

// FieldManager names the plugin's writes in managedFields and audit logs.
const FieldManager = "kubectl-overcommit"

// Server asks the apiserver what it would store after the change: a dry-run merge patch of the
// status subresource that sets the label and annotations. The status subresource stores metadata
// changes and is what the webhook intercepts, so the answer includes the webhook's patch (it
// honours dry runs: sideEffects None), computed from its own settings and caches.
func Server(ctx context.Context, c kubernetes.Interface, n *corev1.Node, change Change) (Item, error) {
	patch, err := change.MergePatch()
	if err != nil {
		return Item{}, err
	}
	ctx, warnings := kube.CollectWarnings(ctx)
	answer, err := c.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch,
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: FieldManager}, "status")
	if err != nil {
		return Item{}, fmt.Errorf("dry-run status write of node %q: %w", n.Name, err)
	}
	return serverItem(n, change.Apply(n), answer, warnings.List())
}
