package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// EnsureSettings creates or updates the settings ConfigMap (names.SettingsConfigMap) with s.
func EnsureSettings(ctx context.Context, cs kubernetes.Interface, s policy.Settings) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names.Namespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", names.Namespace, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: names.SettingsConfigMap, Namespace: names.Namespace}, Data: s.Data()}
	cms := cs.CoreV1().ConfigMaps(names.Namespace)
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err == nil {
		return nil
	} else if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the settings ConfigMap: %w", err)
	}
	cur, err := cms.Get(ctx, names.SettingsConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the settings ConfigMap: %w", err)
	}
	cur.Data = s.Data()
	if _, err := cms.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the settings ConfigMap: %w", err)
	}
	return nil
}
