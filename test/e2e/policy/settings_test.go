//go:build e2e

package policy

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/deploy/nodepolicy"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// TestSettingsValidation: the ValidatingAdmissionPolicy of deploy/base accepts an edit of the
// settings ConfigMap exactly when policy.SettingsFromData does.
func TestSettingsValidation(t *testing.T) {
	ctx := context.Background()
	api := env.Client().AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, nodepolicy.SettingsValidation(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, nodepolicy.SettingsValidationBinding(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cms := env.Client().CoreV1().ConfigMaps(names.Namespace)
	send := func(data map[string]string) error {
		cm, err := cms.Get(ctx, names.SettingsConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data = data
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	with := func(key, value string) map[string]string {
		d := maps.Clone(settings.Data())
		if value == "<delete>" {
			delete(d, key)
		} else {
			d[key] = value
		}
		return d
	}
	// The policy takes effect through the apiserver's informer: wait for the first refusal.
	harness.Eventually(t, 30*time.Second, "the ValidatingAdmissionPolicy to take effect", func() error {
		if send(with(policy.KeyMaxCPURatio, "abc")) == nil {
			return errors.New("a max cpu ratio of abc is accepted")
		}
		return nil
	})
	cases := []map[string]string{
		settings.Data(), policy.DefaultSettings().Data(), nil,
		with(policy.KeyDefaultCPURatio, "<delete>"), with(policy.KeyMaxCPURatio, "1e1"), with(policy.KeyMaxCPURatio, "100"),
		with(policy.KeyMaxCPURatio, "100.000001"), with(policy.KeyDefaultCPURatio, "3.6"), with(policy.KeyDefaultCPURatio, "0.9"),
		with(policy.KeyMaxMemoryRatio, " 2"), with(policy.KeyDefaultMemoryRatio, "2"), with(policy.KeyUsageMargin, "0"),
		with(policy.KeyUsageMargin, "-0.1"), with(policy.KeyMetricsMaxAgeSeconds, "0"), with(policy.KeyMetricsMaxAgeSeconds, "99999"),
		with(policy.KeyMetricsMaxAgeSeconds, "100000"), with(policy.KeyMetricsMaxAgeSeconds, "3m"), with("unrelated", "x"),
	}
	for _, data := range cases {
		_, wantErr := policy.SettingsFromData(data)
		err := send(data)
		if (err == nil) != (wantErr == nil) {
			t.Errorf("data %v: apiserver says %v, SettingsFromData says %v", data, err, wantErr)
		}
		if err != nil && !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
			t.Errorf("data %v: refused with %v, want a validation refusal", data, err)
		}
	}
}
