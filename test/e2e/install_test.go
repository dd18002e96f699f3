//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/webhook/certs"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
)

const (
	serviceAccount = "overcommit-webhook"
	tlsSecret      = "overcommit-webhook-tls"
	// verifiedName is the name the apiserver checks in the webhook's serving certificate.
	verifiedName = cluster.WebhookServiceName + "." + cluster.WebhookNamespace + ".svc"
)

// deployDir is deploy/ of this checkout (tests run in test/e2e).
var deployDir = filepath.Join("..", "..", "deploy")

// webhookKubeconfig is the suite's cluster.WebhookOptions.Kubeconfig: it installs the
// ServiceAccount and RBAC of deploy/base, mints a token for it with the TokenRequest API and
// returns a kubeconfig with that token, so the suite's webhook runs with exactly the permissions
// an install grants. TestMain fails the run if the webhook logged anything forbidden.
func webhookKubeconfig(ctx context.Context, c *cluster.Cluster) (string, error) {
	objs, err := rendered("base")
	if err != nil {
		return "", err
	}
	if err := create(ctx, c.Client(), objs, func(o runtime.Object) bool {
		switch o.(type) {
		case *corev1.Namespace, *corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding:
			return true
		}
		return false
	}); err != nil {
		return "", err
	}
	return serviceAccountKubeconfig(ctx, c, filepath.Join(c.WorkDir(), "kubeconfig", "overcommit-webhook-sa.kubeconfig"))
}

// serviceAccountKubeconfig writes a kubeconfig holding a day-long token of the webhook's
// ServiceAccount.
func serviceAccountKubeconfig(ctx context.Context, c *cluster.Cluster, path string) (string, error) {
	day := int64(24 * 60 * 60)
	tr, err := c.Client().CoreV1().ServiceAccounts(cluster.WebhookNamespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s: %w", serviceAccount, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.RESTConfig().Host, CertificateAuthorityData: c.CA()}
	cfg.AuthInfos[serviceAccount] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: serviceAccount}
	cfg.CurrentContext = "local"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating kubeconfig dir: %w", err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// rendered decodes deploy's manifests for overlay into typed objects (cert-manager kinds are
// skipped: the client-go scheme does not know them).
func rendered(overlay string) ([]runtime.Object, error) {
	data, err := deploy.Render(overlay, "")
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []runtime.Object
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", overlay, err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", overlay, err)
		}
		objs = append(objs, obj)
	}
}

// create creates the objects that keep selects, in order; existing ones are left as they are.
func create(ctx context.Context, cs kubernetes.Interface, objs []runtime.Object, keep func(runtime.Object) bool) error {
	for _, o := range objs {
		if !keep(o) {
			continue
		}
		var err error
		switch v := o.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, v, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = cs.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		default:
			return fmt.Errorf("create: unexpected %T", o)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T: %w", o, err)
		}
	}
	return nil
}

// forbidden finds lines of a log that report a request refused by RBAC.
func forbidden(logFile string) ([]string, error) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// TestInstallServerDryRun applies the base and each overlay with the real kubectl and
// --dry-run=server: every object passes the apiserver's validation and admission (including Pod
// Security "restricted" warnings for the Deployment) without being stored. The suite's own
// registration is already there, as an earlier install would be, except its Service: an
// ExternalName to loopback with other ports, which no install has. Not parallel: without that
// Service the apiserver cannot reach the suite's webhook for a few seconds.
func TestInstallServerDryRun(t *testing.T) {
	svcs := kube(t).CoreV1().Services(cluster.WebhookNamespace)
	if err := svcs.Delete(context.Background(), cluster.WebhookServiceName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.InstallWebhookConfiguration(context.Background()); err != nil {
			t.Errorf("restoring the suite's webhook registration: %v", err)
		}
	})
	// cert-manager's kinds need their CRDs; this cluster has no cert-manager, so install
	// minimal ones (see certManagerCRDs) for the duration of the test.
	crds := filepath.Join(t.TempDir(), "cert-manager-crds.yaml")
	if err := os.WriteFile(crds, []byte(certManagerCRDs), 0o600); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-f", crds)
	t.Cleanup(func() { _, _, _ = kubectl(t, "delete", "-f", crds, "--wait=false") })
	mustKubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io")

	for _, dir := range []string{"base", "overlays/self-signed", "overlays/cert-manager"} {
		t.Run(dir, func(t *testing.T) {
			// A private discovery cache, so the CRDs just created are known.
			out, errOut, err := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "--cache-dir="+t.TempDir(), "-k", filepath.Join(deployDir, dir))
			if err != nil {
				t.Fatalf("server dry run of deploy/%s: %v\n%s", dir, err, errOut)
			}
			for _, l := range strings.Split(errOut, "\n") {
				// Objects the suite created without kubectl apply; a first install has none.
				if strings.Contains(l, "Warning") && !strings.Contains(l, "last-applied-configuration") {
					t.Errorf("warning from the apiserver: %s", l)
				}
			}
			for _, want := range []string{"deployment.apps/overcommit-webhook", "mutatingwebhookconfiguration.admissionregistration.k8s.io/overcommit", "poddisruptionbudget.policy/overcommit-webhook"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %s", want)
				}
			}
		})
	}

	// The plugin prints what kubectl's own kustomize renders from this checkout, and that
	// applies as well.
	for _, overlay := range deploy.Overlays() {
		t.Run("kubectl overcommit install --overlay "+overlay, func(t *testing.T) {
			printed := mustOvercommit(t, "install", "--overlay", overlay)
			if want := mustKubectl(t, "kustomize", filepath.Join(deployDir, "overlays", overlay)); printed != want {
				t.Fatalf("kubectl overcommit install differs from kubectl kustomize deploy/overlays/%s", overlay)
			}
			file := filepath.Join(t.TempDir(), "install.yaml")
			if err := os.WriteFile(file, []byte(printed), 0o600); err != nil {
				t.Fatal(err)
			}
			mustKubectl(t, "apply", "--dry-run=server", "--cache-dir="+t.TempDir(), "-f", file)
		})
	}
}

// TestWebhookRunsWithDeployRBAC: the suite's webhook authenticates as the deploy/ ServiceAccount,
// which may do what the webhook needs and nothing more. (TestMain also fails the run if the
// webhook's log has a forbidden request in it.)
func TestWebhookRunsWithDeployRBAC(t *testing.T) {
	kc := filepath.Join(env.WorkDir(), "kubeconfig", "overcommit-webhook-sa.kubeconfig")
	out := mustKubectl(t, "auth", "whoami", "--kubeconfig="+kc, "-o", "jsonpath={.status.userInfo.username}")
	if want := "system:serviceaccount:" + cluster.WebhookNamespace + ":" + serviceAccount; out != want {
		t.Fatalf("the webhook's kubeconfig authenticates as %q, want %q", out, want)
	}
	as := "--as=system:serviceaccount:" + cluster.WebhookNamespace + ":" + serviceAccount
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "pods", "--all-namespaces"}, "yes"},
		{[]string{"watch", "pods", "--all-namespaces"}, "yes"},
		{[]string{"list", "nodes.metrics.k8s.io"}, "yes"},
		{[]string{"list", "configmaps", "-n", cluster.WebhookNamespace}, "yes"},
		{[]string{"patch", "mutatingwebhookconfigurations/" + names.WebhookConfigurationName}, "yes"},
		{[]string{"list", "configmaps", "-n", "default"}, "no"},
		{[]string{"patch", "mutatingwebhookconfigurations/someone-else"}, "no"},
		{[]string{"create", "mutatingwebhookconfigurations"}, "no"},
		{[]string{"get", "secrets", "-n", cluster.WebhookNamespace}, "no"},
		{[]string{"create", "secrets", "-n", cluster.WebhookNamespace}, "no"},
		{[]string{"patch", "nodes"}, "no"},
		{[]string{"create", "pods", "-n", cluster.WebhookNamespace}, "no"},
	} {
		out, _, _ := kubectl(t, append(append([]string{"auth", "can-i"}, tc.args...), as)...)
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("can-i %s: %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

// webhookProc is an overcommit-webhook process started by a test.
type webhookProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logFile string
	port    int
	probe   int
	metrics int
}

// startWebhook runs the webhook with the arguments of deploy/overlays/self-signed's Deployment,
// bound to loopback ports instead of the container's and with a cert dir of its own.
func startWebhook(t *testing.T, name, kubeconfig string, port int) *webhookProc {
	t.Helper()
	objs, err := rendered(deploy.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			args = d.Spec.Template.Spec.Containers[0].Args
		}
	}
	ports := freePorts(t, 2)
	p := &webhookProc{port: port, probe: ports[0], metrics: ports[1], done: make(chan struct{}),
		logFile: filepath.Join(t.TempDir(), name+".log")}
	override := map[string]string{
		"--port":                      strconv.Itoa(port),
		"--cert-dir":                  filepath.Join(t.TempDir(), "certs"),
		"--metrics-bind-address":      "127.0.0.1:" + strconv.Itoa(p.metrics),
		"--health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(p.probe),
	}
	for i, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && override[k] != "" {
			args[i] = k + "=" + override[k]
			delete(override, k)
		}
	}
	if len(override) > 0 {
		t.Fatalf("the Deployment's args %q lack %v", args, override)
	}
	args = append(args, "--host=127.0.0.1", "--kubeconfig="+kubeconfig, "--log-format=text")
	f, err := os.Create(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(filepath.Join(*binDir, "overcommit-webhook"), args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), "POD_NAMESPACE="+cluster.WebhookNamespace)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			log, _ := os.ReadFile(p.logFile)
			t.Logf("%s log:\n%s", name, log)
		}
	})
	return p
}

func (p *webhookProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *webhookProc) waitReady(t *testing.T) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	eventually(t, 60*time.Second, "webhook ready on "+strconv.Itoa(p.port), func() error {
		select {
		case <-p.done:
			return errors.New("the webhook exited")
		default:
		}
		resp, err := hc.Get("http://127.0.0.1:" + strconv.Itoa(p.probe) + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

// served returns the certificate the webhook presents, verified against bundle for the name the
// apiserver checks.
func (p *webhookProc) served(bundle []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("empty caBundle")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(p.port),
		&tls.Config{RootCAs: pool, ServerName: verifiedName, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func (p *webhookProc) log(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestSelfSignedBootstrap runs the self-signed install for real, in place of the suite's webhook:
// an empty Secret (as the overlay ships it), the overlay's RBAC, and two webhook processes
// started together with the Deployment's arguments and the ServiceAccount's token. They end up
// sharing one certificate, written once, whose CA is in the caBundle of both webhooks, and the
// apiserver calls each of them. Not parallel: it replaces the suite's webhook for a while.
func TestSelfSignedBootstrap(t *testing.T) {
	ctx := context.Background()
	cs := kube(t)
	mwcs := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	secrets := cs.CoreV1().Secrets(cluster.WebhookNamespace)

	objs, err := rendered(deploy.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	port := env.WebhookPort() // where the registered Service points
	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = secrets.Delete(ctx, tlsSecret, metav1.DeleteOptions{})
		_ = cs.RbacV1().RoleBindings(cluster.WebhookNamespace).Delete(ctx, "overcommit-webhook-tls", metav1.DeleteOptions{})
		_ = cs.RbacV1().Roles(cluster.WebhookNamespace).Delete(ctx, "overcommit-webhook-tls", metav1.DeleteOptions{})
		if err := env.StartWebhook(ctx); err != nil {
			t.Errorf("restarting the suite's webhook: %v", err)
		}
		// Back to the runner's registration (its port and CA).
		if err := env.InstallWebhookConfiguration(ctx); err != nil {
			t.Errorf("restoring the webhook configuration: %v", err)
		}
	})
	// The overlay's additions: the empty Secret and the Role for it.
	if err := create(ctx, cs, objs, func(o runtime.Object) bool {
		switch v := o.(type) {
		case *corev1.Secret:
			return len(v.Data) == 0
		case *rbacv1.Role:
			return v.Name == "overcommit-webhook-tls"
		case *rbacv1.RoleBinding:
			return v.Name == "overcommit-webhook-tls"
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if s, err := secrets.Get(ctx, tlsSecret, metav1.GetOptions{}); err != nil || len(s.Data) != 0 {
		t.Fatalf("want the empty Secret of the overlay: %v %v", err, s)
	}
	// No caBundle: the webhooks must inject their own.
	mwc, err := mwcs.Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = nil
	}
	if _, err := mwcs.Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	kc, err := serviceAccountKubeconfig(ctx, env, filepath.Join(t.TempDir(), "sa.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	other := freePorts(t, 1)[0]
	a := startWebhook(t, "webhook-a", kc, port)
	b := startWebhook(t, "webhook-b", kc, other)
	a.waitReady(t)
	b.waitReady(t)

	s, err := secrets.Get(ctx, tlsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := selfsigned.Bundle(s.Data)
	if err := certs.Verify(s.Data[selfsigned.KeyCACert], s.Data[selfsigned.KeyCert], verifiedName); err != nil {
		t.Fatalf("the Secret's serving certificate does not verify against its CA: %v", err)
	}
	writes := strings.Count(a.log(t), "updated the webhook's certificates") + strings.Count(b.log(t), "updated the webhook's certificates")
	if writes != 1 {
		t.Errorf("%d writes of the Secret by the two replicas, want 1 (the other reuses it)", writes)
	}
	block, _ := pem.Decode(s.Data[selfsigned.KeyCert])
	for name, p := range map[string]*webhookProc{"a": a, "b": b} {
		leaf, err := p.served(bundle)
		if err != nil {
			t.Fatalf("replica %s: TLS with the Secret's CA: %v", name, err)
		}
		if !bytes.Equal(leaf.Raw, block.Bytes) {
			t.Errorf("replica %s serves a certificate that is not the Secret's", name)
		}
	}
	eventually(t, 30*time.Second, "caBundle injected into every webhook", func() error {
		mwc, err := mwcs.Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, w := range mwc.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
				return fmt.Errorf("webhook %s caBundle is %d bytes, not the Secret's CA", w.Name, len(w.ClientConfig.CABundle))
			}
			if err := certs.Verify(w.ClientConfig.CABundle, s.Data[selfsigned.KeyCert], verifiedName); err != nil {
				return fmt.Errorf("webhook %s: %w", w.Name, err)
			}
		}
		return nil
	})

	// The apiserver calls replica a (the registered port), then b once the registration points
	// there.
	waitCalled(t, a)
	pointAt(t, other)
	waitCalled(t, b)

	// A replica restarting with an empty cert dir reuses the Secret.
	a.stop()
	a2 := startWebhook(t, "webhook-a2", kc, port)
	a2.waitReady(t)
	if strings.Contains(a2.log(t), "updated the webhook's certificates") {
		t.Error("a restarted replica rewrote the Secret instead of reusing it")
	}
	if leaf, err := a2.served(bundle); err != nil || !bytes.Equal(leaf.Raw, block.Bytes) {
		t.Errorf("the restarted replica does not serve the Secret's certificate: %v", err)
	}

	for _, p := range []*webhookProc{a, b, a2} {
		if lines, err := forbidden(p.logFile); err != nil || len(lines) > 0 {
			t.Errorf("%s: forbidden requests with the self-signed overlay's RBAC (%v):\n%s", p.logFile, err, strings.Join(lines, "\n"))
		}
	}
}

// waitCalled dry-runs the creation of an opted-in node until the apiserver returns it mutated,
// and checks that p answered.
func waitCalled(t *testing.T, p *webhookProc) {
	t.Helper()
	node := cluster.KwokNode("selfsigned-probe", "1", "1Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	delete(node.Annotations, cluster.KwokNodeAnnotation)
	eventually(t, 30*time.Second, "the apiserver calling the webhook on port "+strconv.Itoa(p.port), func() error {
		got, err := kube(t).CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if _, ok := got.Annotations[names.AppliedAnnotation]; !ok {
			return fmt.Errorf("node came back without %s", names.AppliedAnnotation)
		}
		return nil
	})
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.metrics) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !regexp.MustCompile(`overcommit_webhook_requests_total\{[^}]*webhook="node"[^}]*\} [1-9]`).Match(body) {
		t.Errorf("the webhook on port %d counted no node review", p.port)
	}
}

// pointAt makes the registered webhooks call the given loopback port.
func pointAt(t *testing.T, port int) {
	t.Helper()
	mwcs := kube(t).AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(context.Background(), names.WebhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := int32(port)
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.Service.Port = &p
	}
	if _, err := mwcs.Update(context.Background(), mwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// certManagerCRDs are minimal stand-ins for cert-manager's Issuer and Certificate CRDs: the same
// group, versions, kinds and scope, with structural schemas for exactly the fields the
// cert-manager overlay uses (field names as documented by cert-manager's v1 API). With
// --validate=strict a misspelt field fails the dry run; what cert-manager's own validation
// would add on top is not covered.
const certManagerCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.cert-manager.io
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Issuer, listKind: IssuerList, plural: issuers, singular: issuer}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              selfSigned:
                type: object
              ca:
                type: object
                required: [secretName]
                properties:
                  secretName: {type: string}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.cert-manager.io
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Certificate, listKind: CertificateList, plural: certificates, singular: certificate}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [secretName, issuerRef]
            properties:
              secretName: {type: string}
              commonName: {type: string}
              dnsNames: {type: array, items: {type: string}}
              duration: {type: string}
              renewBefore: {type: string}
              isCA: {type: boolean}
              usages: {type: array, items: {type: string}}
              privateKey:
                type: object
                properties:
                  algorithm: {type: string, enum: [RSA, ECDSA, Ed25519]}
                  size: {type: integer}
                  rotationPolicy: {type: string, enum: [Never, Always]}
              issuerRef:
                type: object
                required: [name]
                properties:
                  name: {type: string}
                  kind: {type: string}
                  group: {type: string}
`
