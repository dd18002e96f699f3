package cmd

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overcommit-dev/overcommit/deploy/recordsvalidation"
	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// checkFixture is the fixture installed in a mode with the records validation, where the user
// may do everything but patch nodes/status.
func checkFixture(mode string) *testcluster.Cluster {
	objs := []runtime.Object{testcluster.SettingsConfigMap(policy.DefaultSettings()),
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: recordsvalidation.Name}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: recordsvalidation.Name}},
	}
	if mode == "policy" {
		objs = append(objs, testcluster.NodePolicy(), &admissionregistrationv1.MutatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: names.NodePolicyName},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: names.NodePolicyName,
				ParamRef: &admissionregistrationv1.ParamRef{Name: names.SettingsConfigMap, Namespace: names.Namespace}}})
	} else {
		objs = append(objs, testcluster.InstalledWebhookConfiguration())
	}
	c := fixture(withMetrics(testcluster.Options{Objects: objs}))
	c.Kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		r.Status.Allowed = r.Spec.ResourceAttributes.Subresource != "status"
		return true, r, nil
	})
	return c
}

// TestCheck: in webhook mode the webhook's Service is missing (so it cannot be reached), node-b's
// pods request 6 cpu of a kubelet's 4 (a restart without the webhook rejects one), and the user
// may not patch nodes/status; in policy mode the webhook never confirmed the published records.
// Both exit with an error, and print each problem with its fix.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		golden string
		mode   string
		args   []string
	}{
		{"check-webhook-mode", "webhook", []string{"check"}},
		{"check-webhook-mode-json", "webhook", []string{"check", "-o", "json"}},
		{"check-policy-mode", "policy", []string{"check"}},
		{"check-selector", "webhook", []string{"check", "-l", "kubernetes.io/hostname=node-c", "-o", "yaml"}},
		{"check-bad-threshold", "webhook", []string{"check", "--scale-down-utilization-threshold", "0"}},
		{"check-bad-output", "webhook", []string{"check", "-o", "wide"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			stdout, stderr, err := run(t, checkFixture(tc.mode), tc.args...)
			compareGolden(t, tc.golden, transcript(stdout, stderr, err))
		})
	}
}
