package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Settings are the policy settings the plugin validates and previews with.
type Settings struct {
	policy.Settings
	// Source is SettingsFromConfigMap when the settings ConfigMap is valid, else
	// SettingsFromDefaults.
	Source string
	// Missing says the settings ConfigMap does not exist: the node policy (webhook or
	// MutatingAdmissionPolicy) leaves opted-in nodes unchanged until it does.
	Missing bool
	// Notice explains, once, why the defaults are used ("" when Source is SettingsFromConfigMap).
	Notice string
}

// Sources of Settings.
const (
	SettingsFromConfigMap = "configmap"
	SettingsFromDefaults  = "defaults"
)

// settingsRef names the settings ConfigMap in messages.
var settingsRef = names.Namespace + "/" + names.SettingsConfigMap

// ReadSettings reads the settings ConfigMap (names.SettingsConfigMap in names.Namespace) by the
// rules both node-policy modes apply: valid, its settings; invalid, the defaults. When it is
// missing the node policy leaves nodes unchanged; the plugin says so and validates with the
// defaults. When it cannot be read (no permission, say), the plugin uses the defaults and says
// why.
func ReadSettings(ctx context.Context, c kubernetes.Interface) Settings {
	d := policy.DefaultSettings()
	defaults := fmt.Sprintf("cpu x%s (max x%s), memory x%s (max x%s)", d.CPU.Default, d.CPU.Max, d.Memory.Default, d.Memory.Max)
	cm, err := c.CoreV1().ConfigMaps(names.Namespace).Get(ctx, names.SettingsConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Settings{Settings: d, Source: SettingsFromDefaults, Missing: true, Notice: fmt.Sprintf(
			"settings ConfigMap %s not found: overcommit leaves opted-in nodes unchanged until it exists (see kubectl overcommit install); checking ratios against the defaults: %s",
			settingsRef, defaults)}
	case err != nil:
		return Settings{Settings: d, Source: SettingsFromDefaults, Notice: fmt.Sprintf(
			"cannot read the settings ConfigMap %s (%v); using the defaults: %s", settingsRef, err, defaults)}
	}
	s, err := policy.SettingsFromData(cm.Data)
	if err != nil {
		return Settings{Settings: d.WithConfirmation(cm.Data), Source: SettingsFromDefaults, Notice: fmt.Sprintf(
			"settings ConfigMap %s is invalid (%v); overcommit uses the defaults until it is fixed: %s", settingsRef, err, defaults)}
	}
	return Settings{Settings: s.WithConfirmation(cm.Data), Source: SettingsFromConfigMap}
}
