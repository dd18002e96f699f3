//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
	"github.com/overcommit-dev/overcommit/webhook/certs"
)

// caBundleRBAC is the self-signed overlay's ClusterRole (and binding) that lets the webhook's
// ServiceAccount get and patch its MutatingWebhookConfiguration.
const caBundleRBAC = "overcommit-webhook-cabundle"

// selfSignedPolicy returns the overlay's ValidatingAdmissionPolicy and its binding.
func selfSignedPolicy(t *testing.T) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	objs, err := rendered(deploy.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	var vap *admissionregistrationv1.ValidatingAdmissionPolicy
	var binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, o := range objs {
		switch v := o.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			if v.Name == "overcommit-webhook-cabundle-only" {
				vap = v
			}
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			if v.Spec.PolicyName == "overcommit-webhook-cabundle-only" {
				binding = v
			}
		}
	}
	if vap == nil || binding == nil {
		t.Fatal("the self-signed overlay has no caBundle policy and binding")
	}
	return vap, binding
}

// installCABundleRBAC creates the overlay's caBundle ClusterRole and binding (removed at the end
// of the test).
func installCABundleRBAC(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cs := kube(t)
	objs, err := rendered(deploy.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), caBundleRBAC, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), caBundleRBAC, metav1.DeleteOptions{})
	})
	if err := harness.Create(ctx, cs, objs, func(o runtime.Object) bool {
		switch v := o.(type) {
		case *rbacv1.ClusterRole:
			return v.Name == caBundleRBAC
		case *rbacv1.ClusterRoleBinding:
			return v.Name == caBundleRBAC
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
}

// clientFor returns a clientset for a kubeconfig file.
func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// installCABundlePolicy creates the overlay's ValidatingAdmissionPolicy and binding, waits until
// the apiserver enforces them for the ServiceAccount sa (a client of the webhook's
// ServiceAccount, with the caBundle RBAC), and removes them at the end of the test.
func installCABundlePolicy(t *testing.T, sa kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	api := kube(t).AdmissionregistrationV1()
	vap, binding := selfSignedPolicy(t)
	t.Cleanup(func() {
		_ = api.ValidatingAdmissionPolicyBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		_ = api.ValidatingAdmissionPolicies().Delete(context.Background(), vap.Name, metav1.DeleteOptions{})
	})
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the ValidatingAdmissionPolicy: %v", err)
	}
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the binding: %v", err)
	}
	// The apiserver type-checks the expressions against the configuration's schema: a
	// misspelt field would show here (and fail every match at run time).
	harness.Eventually(t, 60*time.Second, "the policy type-checked", func() error {
		got, err := api.ValidatingAdmissionPolicies().Get(ctx, vap.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.TypeChecking == nil || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("not type-checked yet: %+v", got.Status)
		}
		if w := got.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
			t.Fatalf("type-checking warnings: %+v", w)
		}
		return nil
	})
	// Policies take effect a moment after they are stored.
	harness.Eventually(t, 30*time.Second, "the caBundle policy in force", func() error {
		if err := patchAs(sa, addRule); err == nil {
			return fmt.Errorf("a rule added by the webhook's ServiceAccount is still accepted")
		}
		return nil
	})
}

// mwcPatch is a JSON patch (RFC 6902) of the install's MutatingWebhookConfiguration, built from
// its current state.
type mwcPatch func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any

// patchAs applies p as a dry run (nothing is stored, admission runs in full) with the client cs.
func patchAs(cs kubernetes.Interface, p mwcPatch) error {
	ctx := context.Background()
	mwc, err := env.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the configuration: %w", err)
	}
	body, err := json.Marshal(p(mwc))
	if err != nil {
		return err
	}
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, names.WebhookConfigurationName, types.JSONPatchType, body,
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// A rule for Secrets: the apiserver would send every Secret written in the cluster to the webhook.
func addRule(*admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
	return []map[string]any{{"op": "add", "path": "/webhooks/0/rules/-", "value": map[string]any{
		"operations": []string{"CREATE", "UPDATE"}, "apiGroups": []string{""}, "apiVersions": []string{"v1"}, "resources": []string{"secrets"}}}}
}

// TestCABundlePolicy: the webhook's ServiceAccount, with the self-signed overlay's RBAC (get and
// patch of its own MutatingWebhookConfiguration), can change the caBundle and nothing else once the
// overlay's ValidatingAdmissionPolicy is in place; without the policy the same token could
// add a rule. Administrators are not restricted. Every write is a server-side dry run, so the
// suite's registration is never changed.
func TestCABundlePolicy(t *testing.T) {
	ctx := context.Background()
	installCABundleRBAC(t)
	kc, err := harness.ServiceAccountKubeconfig(ctx, env, filepath.Join(t.TempDir(), "sa.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	sa := clientFor(t, kc)

	// What the policy is for: RBAC alone lets the token add a rule.
	if err := patchAs(sa, addRule); err != nil {
		t.Fatalf("without the policy, the ServiceAccount's rule patch failed (the RBAC should allow it): %v", err)
	}

	installCABundlePolicy(t, sa)

	ca, err := certs.NewCA("cabundle-policy-test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newBundle := base64.StdEncoding.EncodeToString(ca.CertPEM)
	one := func(op, path string, value any) mwcPatch {
		return func(*admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			p := map[string]any{"op": op, "path": path}
			if op != "remove" {
				p["value"] = value
			}
			return []map[string]any{p}
		}
	}
	for _, tc := range []struct {
		name  string
		patch mwcPatch
		// allowed, or the words the refusal must contain
		allowed bool
		reason  string
	}{
		{name: "caBundle of every webhook", allowed: true, patch: func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			var ops []map[string]any
			for i := range mwc.Webhooks {
				ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": newBundle})
			}
			return ops
		}},
		{name: "add a rule", patch: addRule, reason: "may not change what the webhooks match"},
		{name: "caBundle and a rule together", reason: "may not change what the webhooks match", patch: func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			return append(one("add", "/webhooks/0/clientConfig/caBundle", newBundle)(mwc), addRule(mwc)...)
		}},
		{name: "service name", patch: one("replace", "/webhooks/0/clientConfig/service/name", "elsewhere"), reason: "not url or service"},
		{name: "service namespace", patch: one("replace", "/webhooks/0/clientConfig/service/namespace", "default"), reason: "not url or service"},
		{name: "url instead of service", reason: "not url or service", patch: func(*admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			return []map[string]any{
				{"op": "remove", "path": "/webhooks/0/clientConfig/service"},
				{"op": "add", "path": "/webhooks/0/clientConfig/url", "value": "https://attacker.example:9443/mutate"},
			}
		}},
		{name: "failurePolicy", reason: "how the webhooks are called", patch: func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			other := admissionregistrationv1.Fail
			if p := mwc.Webhooks[0].FailurePolicy; p != nil && *p == admissionregistrationv1.Fail {
				other = admissionregistrationv1.Ignore
			}
			return one("replace", "/webhooks/0/failurePolicy", other)(mwc)
		}},
		{name: "timeoutSeconds", patch: one("replace", "/webhooks/0/timeoutSeconds", 30), reason: "how the webhooks are called"},
		{name: "namespaceSelector", patch: one("replace", "/webhooks/0/namespaceSelector", map[string]any{"matchLabels": map[string]string{"e2e.overcommit.dev/only": "here"}}), reason: "may not change what the webhooks match"},
		{name: "add a webhook", reason: "add, remove, rename or reorder", patch: func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			w := mwc.Webhooks[0].DeepCopy()
			w.Name = "everything.attacker.example"
			return one("add", "/webhooks/-", w)(mwc)
		}},
		{name: "rename a webhook", patch: one("replace", "/webhooks/0/name", "renamed.overcommit.dev"), reason: "add, remove, rename or reorder"},
		{name: "remove a webhook", patch: one("remove", "/webhooks/0", nil), reason: "add, remove, rename or reorder"},
		{name: "label", reason: "labels, annotations, owners or finalizers", patch: func(mwc *admissionregistrationv1.MutatingWebhookConfiguration) []map[string]any {
			labels := map[string]string{"e2e.overcommit.dev/added": "x"}
			for k, v := range mwc.Labels {
				labels[k] = v
			}
			return one("add", "/metadata/labels", labels)(mwc)
		}},
		{name: "finalizer", patch: one("add", "/metadata/finalizers", []string{"e2e.overcommit.dev/hold"}), reason: "labels, annotations, owners or finalizers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := patchAs(sa, tc.patch)
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.allowed:
				return
			case err == nil:
				t.Fatal("accepted; want refused by the policy")
			case !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err):
				t.Fatalf("refused for another reason: %v", err)
			case !strings.Contains(err.Error(), "overcommit-webhook-cabundle-only") || !strings.Contains(err.Error(), tc.reason):
				t.Fatalf("refusal %q, want the policy's %q", err, tc.reason)
			}
			// An administrator may still make the same change.
			if err := patchAs(kube(t), tc.patch); err != nil && strings.Contains(err.Error(), "overcommit-webhook-cabundle-only") {
				t.Errorf("the policy refused an administrator: %v", err)
			}
		})
	}

	// The patch exactly as the webhook sends it (strategic merge by webhook name, with the
	// configuration's resourceVersion as precondition) is allowed.
	mwc, err := kube(t).AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var hooks []map[string]any
	for _, w := range mwc.Webhooks {
		hooks = append(hooks, map[string]any{"name": w.Name, "clientConfig": map[string]any{"caBundle": ca.CertPEM}})
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": mwc.ResourceVersion}, "webhooks": hooks})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, mwc.Name, types.StrategicMergePatchType, body,
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "overcommit-webhook"}); err != nil {
		t.Errorf("the webhook's own caBundle patch was refused: %v", err)
	}
}
