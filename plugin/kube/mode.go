package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Node-policy modes an install may be in (NodePolicy.Mode).
const (
	// ModePolicy: the MutatingAdmissionPolicy names.NodePolicyName runs the node policy inside
	// kube-apiserver.
	ModePolicy = "policy"
	// ModeWebhook: the node webhook of the MutatingWebhookConfiguration runs it.
	ModeWebhook = "webhook"
	// ModeBoth: both are installed, so a node write would be rewritten twice.
	ModeBoth = "both"
	// ModeNone: neither is installed; opted-in nodes are left unchanged.
	ModeNone = "none"
	// ModeUnknown: the plugin could not tell (no permission to read them, say).
	ModeUnknown = "unknown"
)

// NodePolicy is the node-policy mode installed in the cluster.
type NodePolicy struct {
	Mode string
	// Notice explains a mode that needs the user's attention (both, none, unknown); "" otherwise.
	Notice string
}

// What each mode's objects are called in messages.
var (
	policyRef  = "MutatingAdmissionPolicy " + names.NodePolicyName
	webhookRef = "webhook " + names.NodeWebhookName + " of MutatingWebhookConfiguration " + names.WebhookConfigurationName
)

// DetectNodePolicy reports the node-policy mode installed: ModePolicy when the
// MutatingAdmissionPolicy names.NodePolicyName exists, ModeWebhook when the
// MutatingWebhookConfiguration names.WebhookConfigurationName has the webhook
// names.NodeWebhookName, ModeBoth or ModeNone with a notice, and ModeUnknown with the reason when
// either cannot be read. A cluster that does not serve MutatingAdmissionPolicy answers NotFound,
// as for a missing policy.
func DetectNodePolicy(ctx context.Context, c kubernetes.Interface) NodePolicy {
	var problems []string
	policy := false
	switch _, err := c.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, names.NodePolicyName, metav1.GetOptions{}); {
	case err == nil:
		policy = true
	case !apierrors.IsNotFound(err):
		problems = append(problems, fmt.Sprintf("cannot read the %s: %v", policyRef, err))
	}
	webhook := false
	switch mwc, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{}); {
	case err == nil:
		webhook = slices.ContainsFunc(mwc.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == names.NodeWebhookName })
	case !apierrors.IsNotFound(err):
		problems = append(problems, fmt.Sprintf("cannot read MutatingWebhookConfiguration %s: %v", names.WebhookConfigurationName, err))
	}
	switch {
	case policy && webhook:
		return NodePolicy{Mode: ModeBoth, Notice: fmt.Sprintf(
			"both the %s and the %s are installed: each node write would be rewritten twice; install one mode (kubectl overcommit install --mode policy|webhook) and delete the other",
			policyRef, webhookRef)}
	case policy:
		return NodePolicy{Mode: ModePolicy}
	case webhook:
		return NodePolicy{Mode: ModeWebhook}
	case len(problems) > 0:
		return NodePolicy{Mode: ModeUnknown, Notice: "cannot tell which node policy is installed (" + strings.Join(problems, "; ") + ")"}
	}
	return NodePolicy{Mode: ModeNone, Notice: fmt.Sprintf(
		"no node policy is installed (neither the %s nor the %s): opted-in nodes are left unchanged; see kubectl overcommit install",
		policyRef, webhookRef)}
}

// ServesMutatingAdmissionPolicy reports whether the cluster serves
// admissionregistration.k8s.io/v1 mutatingadmissionpolicies (Kubernetes 1.36 and later), through
// discovery.
func ServesMutatingAdmissionPolicy(c kubernetes.Interface) (bool, error) {
	gv := schema.GroupVersion{Group: "admissionregistration.k8s.io", Version: "v1"}
	list, err := c.Discovery().ServerResourcesForGroupVersion(gv.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot discover %s: %w", gv, err)
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "mutatingadmissionpolicies" }), nil
}
