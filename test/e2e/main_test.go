//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

var env *cluster.Cluster

// suiteSettings are the settings ConfigMap of the suite: the defaults, with usage data trusted for
// 40 s so that a test can watch a node fall back.
var suiteSettings = func() policy.Settings {
	s := policy.DefaultSettings()
	s.MaxMetricsAge = 40 * time.Second
	return s
}()

// heartbeat is kwok's node heartbeat interval in this suite: short, so tests can count heartbeats.
const heartbeat = 2 * time.Second

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &env, harness.Suite{
		Timeout: 10 * time.Minute,
		Cluster: cluster.Options{
			Kwok:          true,
			KwokHeartbeat: heartbeat,
			MetricsServer: true,
			Webhook: &cluster.WebhookOptions{
				Pods: true,
				// The usage policy without warm-up or hysteresis: this suite checks its formula on
				// steady usage; test/e2e/history checks the window.
				Args: []string{"--log-level=debug", "--metrics-refresh-interval=5s", "--usage-min-window=0", "--usage-raise-after=0"},
				// The ServiceAccount and RBAC of deploy/, not an admin.
				Kubeconfig: webhookKubeconfig,
				// The apiserver authenticates to the webhook with a client certificate, so every
				// review of the suite goes through it (clientauth_test.go).
				ClientAuth: true,
			},
		},
		Setup: func(ctx context.Context, c *cluster.Cluster) error {
			if err := c.InstallWebhookConfiguration(ctx); err != nil {
				return fmt.Errorf("registering the webhook: %w", err)
			}
			return nil
		},
		// Everything the suite made the webhook do was allowed by deploy/'s RBAC.
		Verify: harness.VerifyNotForbidden,
	}))
}

// binary is the path of a built binary.
func binary(t testing.TB, name string) string {
	t.Helper()
	bin, err := harness.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(bin, name)
}

// kube returns an admin clientset.
func kube(t testing.TB) kubernetes.Interface {
	t.Helper()
	return env.Client()
}

// kubectl runs the real kubectl against the cluster, with bin/ first on PATH so that
// `kubectl overcommit` finds the plugin.
func kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return harness.Kubectl(t, env, args...)
}

// mustKubectl is kubectl that fails the test on a non-zero exit.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	return harness.MustKubectl(t, env, args...)
}

// newKwokNode creates a kwok-managed node, waits until it is Ready, and deletes it when the test ends.
func newKwokNode(t testing.TB, name, cpu, memory string, labels map[string]string) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	n := cluster.KwokNode(name, cpu, memory)
	for k, v := range labels {
		n.Labels[k] = v
	}
	if _, err := kube(t).CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := kube(t).CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	})
	if err := env.WaitNodeReady(ctx, name, time.Minute); err != nil {
		t.Fatal(err)
	}
	return getNode(t, name)
}

func getNode(t testing.TB, name string) *corev1.Node {
	t.Helper()
	n, err := kube(t).CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", name, err)
	}
	return n
}
