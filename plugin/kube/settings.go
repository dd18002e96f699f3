package kube

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Settings are the policy settings the plugin validates and previews with.
type Settings struct {
	policy.Settings
	// Source is "webhook" when read from the webhook's configuration, else "defaults".
	Source string
	// Notice explains, once, why the defaults are used ("" when Source is "webhook").
	Notice string
}

// Sources of Settings.
const (
	SettingsFromWebhook  = "webhook"
	SettingsFromDefaults = "defaults"
)

// ReadSettings reads the settings the webhook publishes on its MutatingWebhookConfiguration.
// When they are missing or unreadable it returns the webhook's flag defaults and a notice:
// the plugin still works against a webhook that has not published yet, or for a user who may
// not read webhook configurations.
func ReadSettings(ctx context.Context, c kubernetes.Interface) Settings {
	fallback := func(why string) Settings {
		d := policy.DefaultSettings()
		return Settings{Settings: d, Source: SettingsFromDefaults, Notice: fmt.Sprintf(
			"cannot read the webhook's settings (%s); using the defaults: cpu x%s (max x%s), memory x%s (max x%s)",
			why, d.CPU.Default, d.CPU.Max, d.Memory.Default, d.Memory.Max)}
	}
	mwc, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		return fallback(err.Error())
	}
	raw, ok := mwc.Annotations[names.SettingsAnnotation]
	if !ok {
		return fallback(fmt.Sprintf("mutatingwebhookconfiguration %q has no %s annotation", names.WebhookConfigurationName, names.SettingsAnnotation))
	}
	var s policy.Settings
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fallback(fmt.Sprintf("invalid %s annotation: %v", names.SettingsAnnotation, err))
	}
	return Settings{Settings: s, Source: SettingsFromWebhook}
}
