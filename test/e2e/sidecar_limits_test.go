//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSidecarHostileInjectAnnotation: through the real apiserver (which calls mutating webhooks
// before it validates the pod, so the annotation reaches the webhook unvalidated), an inject
// annotation over the limits is denied at once with the webhook's bounded message.
func TestSidecarHostileInjectAnnotation(t *testing.T) {
	ns := sidecarNamespace(t, "sidecar-limits", true)
	newTemplate(t, "e2e-limits", "containers: [{name: limits, image: registry.example/limits:1}]")
	waitTemplate(t, ns, "e2e-limits", nil)

	many := make([]string, 20000)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	tests := []struct{ name, inject, want string }{
		{"33 names", strings.Join(many[:33], ","), "more than 32 template names, over the limit of 32"},
		{"20,000 names", strings.Join(many, ","), "longer than 16384 bytes, the limit"},
		{"1 MiB annotation", strings.Repeat("e2e-limits,", 1<<20/11), "longer than 16384 bytes, the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := kube(t).CoreV1().Pods(ns).Create(context.Background(), appPod("hostile", tc.inject), metav1.CreateOptions{})
			if err == nil {
				t.Fatal("admitted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %.500q does not contain %q", err.Error(), tc.want)
			}
			if n := len(err.Error()); n > 4<<10 {
				t.Errorf("error of %d bytes", n)
			}
			t.Logf("denied in %v", time.Since(start))
		})
	}
}
