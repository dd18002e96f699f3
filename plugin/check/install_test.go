package check

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// healthyWebhookMode is an install in webhook mode that passes every check.
func healthyWebhookMode() Install {
	return Install{
		Mode:              kube.NodePolicy{Mode: kube.ModeWebhook},
		RecordsValidation: true,
		Webhook:           testcluster.InstalledWebhookConfiguration(),
		Endpoints:         &kube.ServiceEndpoints{Namespace: names.Namespace, Name: "overcommit-webhook", Ready: 2},
		Settings:          kube.Settings{Settings: policy.DefaultSettings(), Source: kube.SettingsFromConfigMap},
		OptedIn:           3,
		Usage:             kube.Usage{Nodes: map[string]kube.NodeUsage{}},
		Permissions:       []kube.Permission{{For: "every command", Required: true, Allowed: true}},
		Now:               now,
	}
}

func TestInstallResults(t *testing.T) {
	policyMode := func(in *Install) {
		in.Mode = kube.NodePolicy{Mode: kube.ModePolicy}
		in.Webhook, in.Endpoints = nil, nil
		in.Binding = &admissionregistrationv1.MutatingAdmissionPolicyBinding{Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: names.NodePolicyName, ParamRef: &admissionregistrationv1.ParamRef{Name: names.SettingsConfigMap, Namespace: names.Namespace}}}
		in.Settings.TargetsConfirmedAt = now.Add(-30 * time.Second)
	}
	for _, tc := range []struct {
		name string
		edit func(in *Install)
		want map[string]Status // the checks that do not pass
	}{
		{"healthy webhook mode", func(*Install) {}, nil},
		{"healthy policy mode", policyMode, nil},
		{"no node policy", func(in *Install) { in.Mode = kube.NodePolicy{Mode: kube.ModeNone} }, map[string]Status{"mode": Fail}},
		{"both modes", func(in *Install) { in.Mode = kube.NodePolicy{Mode: kube.ModeBoth} }, map[string]Status{"mode": Fail, "policy-binding": Fail}},
		{"policy not bound", func(in *Install) { policyMode(in); in.Binding = nil }, map[string]Status{"policy-binding": Fail}},
		{"binding without params", func(in *Install) { policyMode(in); in.Binding.Spec.ParamRef = nil }, map[string]Status{"policy-binding": Fail}},
		{"records unguarded", func(in *Install) { in.RecordsValidation = false }, map[string]Status{"records-validation": Fail}},
		{"webhook fails closed", func(in *Install) {
			f := admissionregistrationv1.Fail
			in.Webhook.Webhooks[0].FailurePolicy = &f
		}, map[string]Status{"webhook-configuration": Fail}},
		{"no caBundle", func(in *Install) { in.Webhook.Webhooks[0].ClientConfig.CABundle = nil }, map[string]Status{"webhook-configuration": Fail}},
		{"no ready endpoint", func(in *Install) { in.Endpoints.Ready, in.Endpoints.NotReady = 0, 2 }, map[string]Status{"webhook-endpoints": Fail}},
		{"one ready endpoint", func(in *Install) { in.Endpoints.Ready = 1 }, map[string]Status{"webhook-endpoints": Warn}},
		{"service missing", func(in *Install) { in.Endpoints.Missing = true }, map[string]Status{"webhook-endpoints": Fail}},
		{"settings missing", func(in *Install) { in.Settings = kube.Settings{Missing: true, Source: kube.SettingsFromDefaults} },
			map[string]Status{"settings": Fail}},
		{"settings invalid", func(in *Install) {
			in.Settings = kube.Settings{Settings: policy.DefaultSettings(), Source: kube.SettingsFromDefaults, Notice: "invalid"}
		}, map[string]Status{"settings": Fail}},
		{"records never confirmed", func(in *Install) { policyMode(in); in.Settings.TargetsConfirmedAt = time.Time{} },
			map[string]Status{"published-records": Fail}},
		{"records confirmed too long ago", func(in *Install) { policyMode(in); in.Settings.TargetsConfirmedAt = now.Add(-time.Hour) },
			map[string]Status{"published-records": Fail}},
		{"no opted-in node: confirmation not needed", func(in *Install) {
			policyMode(in)
			in.OptedIn, in.Settings.TargetsConfirmedAt = 0, time.Time{}
		}, nil},
		{"usage nodes without metrics.k8s.io", func(in *Install) { in.UsageNodes, in.Usage = 2, kube.Usage{Unavailable: "not served"} },
			map[string]Status{"metrics-api": Fail}},
		{"no usage node, no metrics.k8s.io", func(in *Install) { in.Usage = kube.Usage{Unavailable: "not served"} }, nil},
		{"usage node without a fresh sample", func(in *Install) { in.UsageNodes, in.StaleUsageNodes = 2, []string{"node-a"} },
			map[string]Status{"metrics-api": Warn}},
		{"missing a permission check needs", func(in *Install) {
			in.Permissions = append(in.Permissions, kube.Permission{For: "x", Required: true})
		}, map[string]Status{"permissions": Fail}},
		{"missing a permission only enable needs", func(in *Install) {
			in.Permissions = append(in.Permissions, kube.Permission{For: "enable", Required: false})
		}, map[string]Status{"permissions": Warn}},
		{"autoscaler unknown", func(in *Install) { in.Autoscaler.Err = errors.New("forbidden") }, map[string]Status{"autoscaler": Warn}},
		{"binding unreadable", func(in *Install) { policyMode(in); in.BindingErr = errors.New("forbidden") }, map[string]Status{"policy-binding": Fail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := healthyWebhookMode()
			tc.edit(&in)
			got := map[string]Status{}
			for _, r := range InstallResults(in) {
				if r.Status != OK {
					got[r.Check] = r.Status
				}
				if r.Status != OK && r.Fix == "" {
					t.Errorf("%s: %s without a fix", r.Check, r.Status)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpEmptyMap); diff != "" {
				t.Errorf("checks that do not pass (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmptyMap = cmp.Comparer(func(a, b map[string]Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
})
