package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// publishSettings records the effective policy settings on the webhook's own
// MutatingWebhookConfiguration, so `kubectl overcommit` validates and previews with the limits the
// webhook really applies. It retries until it succeeds or ctx ends: the apiserver may be
// unreachable at start-up, and serving does not depend on it.
func publishSettings(ctx context.Context, kube kubernetes.Interface, name string, s policy.Settings, log *slog.Logger) {
	settings, err := json.Marshal(s)
	if err != nil {
		log.Error("encoding settings", "err", err)
		return
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{names.SettingsAnnotation: string(settings)}}})
	if err != nil {
		log.Error("encoding settings patch", "err", err)
		return
	}
	attempt := 0
	_ = wait.PollUntilContextCancel(ctx, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		attempt++
		_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "overcommit-webhook"})
		if err != nil {
			if attempt == 1 || attempt%30 == 0 { // once, then every ~5 minutes
				log.Warn("cannot publish settings on the webhook configuration; the plugin falls back to default limits",
					"mutatingWebhookConfiguration", name, "err", fmt.Sprint(err))
			}
			return false, nil
		}
		log.Info("published settings", "mutatingWebhookConfiguration", name, "settings", string(settings))
		return true, nil
	})
}
