package names

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSystemNamespaces: the namespaces Kubernetes itself creates, by its own constants.
func TestSystemNamespaces(t *testing.T) {
	want := []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}
	if diff := cmp.Diff(want, SystemNamespaces()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
