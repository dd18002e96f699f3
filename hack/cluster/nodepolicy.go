package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/deploy/nodepolicy"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// InstallNodePolicy switches the cluster to policy mode: the settings ConfigMap, then the
// MutatingAdmissionPolicy and its binding as deploy/ ships them. It returns once the apiserver
// applies the policy (a dry-run create of an opted-in node comes back overcommitted).
func (c *Cluster) InstallNodePolicy(ctx context.Context, s policy.Settings) error {
	cs := c.client
	if err := EnsureSettings(ctx, cs, s); err != nil {
		return err
	}
	api := cs.AdmissionregistrationV1()
	p, b := nodepolicy.Policy(), nodepolicy.Binding()
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the MutatingAdmissionPolicy: %w", err)
	}
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the MutatingAdmissionPolicyBinding: %w", err)
	}
	probe := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "overcommit-policy-probe", Labels: map[string]string{names.EnabledLabel: names.EnabledValue}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
		},
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := cs.CoreV1().Nodes().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && got.Annotations[names.AppliedAnnotation] != "" {
			c.logf("node policy active (MutatingAdmissionPolicy %s)", names.NodePolicyName)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the MutatingAdmissionPolicy was not applied within 60s (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// UninstallNodePolicy removes the policy and its binding (the settings stay).
func (c *Cluster) UninstallNodePolicy(ctx context.Context) error {
	api := c.client.AdmissionregistrationV1()
	if err := api.MutatingAdmissionPolicyBindings().Delete(ctx, names.NodePolicyName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := api.MutatingAdmissionPolicies().Delete(ctx, names.NodePolicyName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
