//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var (
	binDir  = flag.String("bin-dir", "../../bin", "directory with the built binaries and the control plane (make build tools)")
	keepDir = flag.Bool("keep-logs", false, "keep the cluster's work dir (logs) after the run")
	env     *cluster.Cluster
)

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
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*binDir = bin
	env, err = cluster.Start(ctx, cluster.Options{
		BinDir:        bin,
		Keep:          *keepDir,
		Log:           os.Stderr,
		Kwok:          true,
		KwokHeartbeat: heartbeat,
		MetricsServer: true,
		Webhook: &cluster.WebhookOptions{
			Pods: true,
			Args: []string{"--log-level=debug", "--metrics-refresh-interval=5s"},
			// The ServiceAccount and RBAC of deploy/, not an admin.
			Kubeconfig: webhookKubeconfig,
			// The apiserver authenticates to the webhook with a client certificate, so every
			// review of the suite goes through it (clientauth_test.go).
			ClientAuth: true,
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the local control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the local control plane: %v\n", err)
		}
	}()
	if err := env.InstallWebhookConfiguration(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "registering the webhook: %v\n", err)
		return 1
	}
	code := m.Run()
	// Everything the suite made the webhook do was allowed by deploy/'s RBAC.
	lines, err := forbidden(env.LogFile("overcommit-webhook"))
	if err != nil || len(lines) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the webhook, running with the RBAC of deploy/, was refused (%v):\n%s\n", err, strings.Join(lines, "\n"))
		return 1
	}
	return code
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// KUBECONFIG rather than --kubeconfig: kubectl refuses flags before a plugin's name.
	cmd := exec.CommandContext(ctx, filepath.Join(*binDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "PATH="+*binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("kubectl %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// mustKubectl is kubectl that fails the test on a non-zero exit.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
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

// eventually polls check until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func getNode(t testing.TB, name string) *corev1.Node {
	t.Helper()
	n, err := kube(t).CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", name, err)
	}
	return n
}
