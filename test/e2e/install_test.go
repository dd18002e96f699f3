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

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/internal/freeport"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
	"github.com/overcommit-dev/overcommit/webhook/certs"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
)

const (
	serviceAccount = harness.WebhookServiceAccount
	tlsSecret      = "overcommit-webhook-tls"
	// verifiedName is the name the apiserver checks in the webhook's serving certificate.
	verifiedName = cluster.WebhookServiceName + "." + cluster.WebhookNamespace + ".svc"
)

// deployDir is deploy/ of this checkout (tests run in test/e2e).
var deployDir = filepath.Join("..", "..", "deploy")

// webhookKubeconfig is the suite's cluster.WebhookOptions.Kubeconfig: the settings, then the
// install's ServiceAccount and RBAC (harness.WebhookKubeconfig). TestMain fails the run if the
// webhook logged anything forbidden.
func webhookKubeconfig(ctx context.Context, c *cluster.Cluster) (string, error) {
	if err := cluster.EnsureSettings(ctx, c.Client(), suiteSettings); err != nil {
		return "", err
	}
	return harness.WebhookKubeconfig(deploy.ModeWebhook)(ctx, c)
}

// rendered decodes deploy's manifests for overlay in webhook mode into typed objects.
func rendered(overlay string) ([]runtime.Object, error) {
	return harness.Rendered(overlay, deploy.ModeWebhook)
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
			printed := mustOvercommit(t, "install", "--overlay", overlay, "--mode", deploy.ModeWebhook)
			// The overlay with the webhook-mode component, as a user's kustomization adds it.
			dir, err := os.MkdirTemp(deployDir, ".install-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../overlays/" + overlay + "\ncomponents:\n- ../modes/" + deploy.ModeWebhook + "\n"
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
				t.Fatal(err)
			}
			if want := mustKubectl(t, "kustomize", dir); printed != want {
				t.Fatalf("kubectl overcommit install --mode webhook differs from kubectl kustomize of deploy/overlays/%s with the webhook component", overlay)
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
		{[]string{"list", "nodes"}, "yes"},
		{[]string{"watch", "nodes"}, "yes"},
		{[]string{"list", "configmaps", "-n", cluster.WebhookNamespace}, "yes"},
		{[]string{"list", "configmaps", "-n", "default"}, "no"},
		// The caBundle is the self-signed overlay's business (TestSelfSignedBootstrap), not base's.
		{[]string{"patch", "mutatingwebhookconfigurations/" + names.WebhookConfigurationName}, "no"},
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
// bound to loopback ports instead of the container's and with a cert dir of its own; extra flags
// come last and win.
func startWebhook(t *testing.T, name, kubeconfig string, port int, extra ...string) *webhookProc {
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
	args = append(append(args, "--host=127.0.0.1", "--kubeconfig="+kubeconfig, "--log-format=text"), extra...)
	f, err := os.Create(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(binary(t, "overcommit-webhook"), args...)
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
	harness.Eventually(t, 60*time.Second, "webhook ready on "+strconv.Itoa(p.port), func() error {
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

// served returns the certificate the webhook presents, verified against bundle for name (what the
// apiserver checks: <service>.<namespace>.svc).
func (p *webhookProc) served(bundle []byte, name string) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("empty caBundle")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(p.port),
		&tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12})
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
	ports, err := freeport.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// TestSelfSignedBootstrap runs the self-signed install for real, in place of the suite's webhook:
// an empty Secret (as the overlay ships it), the overlay's RBAC, and two webhook processes
// started together with the Deployment's arguments and the ServiceAccount's token. They end up
// sharing one certificate, written once, whose CA is in the caBundle of both webhooks, and the
// apiserver calls each of them. Not parallel: it replaces the suite's webhook for a while.
func TestSelfSignedBootstrap(t *testing.T) {
	const caBundleRBAC = "overcommit-webhook-cabundle" // deploy/overlays/self-signed/rbac.yaml
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
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, caBundleRBAC, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, caBundleRBAC, metav1.DeleteOptions{})
		if err := env.StartWebhook(ctx); err != nil {
			t.Errorf("restarting the suite's webhook: %v", err)
		}
		// Back to the runner's registration (its port and CA).
		if err := env.InstallWebhookConfiguration(ctx); err != nil {
			t.Errorf("restoring the webhook configuration: %v", err)
		}
	})
	// The overlay's additions: the empty Secret and the Role for it.
	if err := harness.Create(ctx, cs, objs, func(o runtime.Object) bool {
		switch v := o.(type) {
		case *corev1.Secret:
			return len(v.Data) == 0
		case *rbacv1.Role:
			return v.Name == "overcommit-webhook-tls"
		case *rbacv1.RoleBinding:
			return v.Name == "overcommit-webhook-tls"
		case *rbacv1.ClusterRole:
			return v.Name == caBundleRBAC
		case *rbacv1.ClusterRoleBinding:
			return v.Name == caBundleRBAC
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

	kc, err := harness.ServiceAccountKubeconfig(ctx, env, filepath.Join(t.TempDir(), "sa.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	// The overlay's policy too: the webhooks bootstrap with it in force (cabundle_test.go).
	installCABundlePolicy(t, clientFor(t, kc))
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
		leaf, err := p.served(bundle, verifiedName)
		if err != nil {
			t.Fatalf("replica %s: TLS with the Secret's CA: %v", name, err)
		}
		if !bytes.Equal(leaf.Raw, block.Bytes) {
			t.Errorf("replica %s serves a certificate that is not the Secret's", name)
		}
	}
	harness.Eventually(t, 30*time.Second, "caBundle injected into every webhook", func() error {
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
	if leaf, err := a2.served(bundle, verifiedName); err != nil || !bytes.Equal(leaf.Raw, block.Bytes) {
		t.Errorf("the restarted replica does not serve the Secret's certificate: %v", err)
	}

	for _, p := range []*webhookProc{a, b, a2} {
		if lines, err := harness.Forbidden(p.logFile); err != nil || len(lines) > 0 {
			t.Errorf("%s: forbidden requests with the self-signed overlay's RBAC (%v):\n%s", p.logFile, err, strings.Join(lines, "\n"))
		}
	}
}

// waitCalled dry-runs the creation of an opted-in node until the apiserver returns it mutated
// by p (p counts one more node review): a changed registration takes effect a moment later.
func waitCalled(t *testing.T, p *webhookProc) {
	t.Helper()
	node := cluster.KwokNode("selfsigned-probe", "1", "1Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	delete(node.Annotations, cluster.KwokNodeAnnotation)
	harness.Eventually(t, 30*time.Second, "the apiserver calling the webhook on port "+strconv.Itoa(p.port), func() error {
		before := p.nodeReviews(t)
		got, err := kube(t).CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if _, ok := got.Annotations[names.AppliedAnnotation]; !ok {
			return fmt.Errorf("node came back without %s", names.AppliedAnnotation)
		}
		if p.nodeReviews(t) == before {
			return errors.New("mutated, but not by this replica")
		}
		return nil
	})
}

var nodeReviewsMetric = regexp.MustCompile(`(?m)^overcommit_webhook_requests_total\{[^}]*webhook="node"[^}]*\} (\d+)$`)

// nodeReviews is how many node reviews the webhook has answered.
func (p *webhookProc) nodeReviews(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.metrics) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n := 0
	for _, m := range nodeReviewsMetric.FindAllSubmatch(body, -1) {
		v, _ := strconv.Atoi(string(m[1]))
		n += v
	}
	return n
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

// TestSelfSignedRotation runs the self-signed provisioning with its timing shortened (a CA of 3
// minutes, serving certificates of 90 s, checks every 2 s) through serving renewals and a full CA
// rotation, while the real apiserver calls the webhook twice a second and a second replica is
// dialled with the live caBundle: not one call may fail. It uses its own namespace, Service,
// Secret and webhook configuration (admin credentials: the RBAC of deploy/ names the install's),
// so it runs in parallel with the rest of the suite.
func TestSelfSignedRotation(t *testing.T) {
	t.Parallel()
	const (
		ns      = "overcommit-rotation"
		svc     = "rotation-webhook"
		secret  = "rotation-tls"
		mwcName = "overcommit-rotation-e2e"
		label   = "e2e.overcommit.dev/rotation"
	)
	ctx := context.Background()
	cs := kube(t)
	ports := freePorts(t, 2)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwcName, metav1.DeleteOptions{})
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(ports[0])}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Its own settings, so that its reviews are ordinary ones (not "no settings" warnings).
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: names.SettingsConfigMap},
		Data: policy.DefaultSettings().Data()}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The install's node webhook, pointed at this test's Service and limited to its nodes.
	w := cluster.WebhookConfiguration(cluster.WebhookConfig{Port: int32(ports[0])}).Webhooks[0]
	w.Name = "nodes.rotation.e2e.overcommit.dev"
	w.ClientConfig.Service.Namespace, w.ClientConfig.Service.Name = ns, svc
	w.ObjectSelector.MatchLabels[label] = "true"
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mwcName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{w}}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	flags := []string{"--namespace=" + ns, "--self-signed-secret=" + secret, "--service-name=" + svc, "--webhook-config-name=" + mwcName,
		"--self-signed-ca-validity=3m", "--self-signed-cert-validity=90s", "--self-signed-check-interval=2s", "--self-signed-propagation=30s"}
	a := startWebhook(t, "rotation-a", env.Kubeconfig(), ports[0], flags...)
	b := startWebhook(t, "rotation-b", env.Kubeconfig(), ports[1], flags...)
	a.waitReady(t)
	b.waitReady(t)

	node := cluster.KwokNode("rotation-probe", "2", "1Gi")
	node.Labels[names.EnabledLabel], node.Labels[label] = names.EnabledValue, "true"
	delete(node.Annotations, cluster.KwokNodeAnnotation)
	cas, servings := map[string]bool{}, map[string]bool{}
	stagedSeen, calls, failures := false, 0, 0
	begin := time.Now()
	for deadline := begin.Add(5 * time.Minute); ; {
		if time.Now().After(deadline) {
			t.Fatalf("no full CA rotation within 5 minutes (CAs seen: %d, staged seen: %v)", len(cas), stagedSeen)
		}
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cas[string(s.Data[selfsigned.KeyCACert])] = true
		servings[string(s.Data[selfsigned.KeyCert])] = true
		stagedSeen = stagedSeen || len(s.Data[selfsigned.KeyNextCACert]) > 0
		rotated := len(cas) >= 2 && stagedSeen && len(s.Data[selfsigned.KeyNextCACert]) == 0 && len(s.Data[selfsigned.KeyPreviousCACert]) == 0
		if rotated && len(servings) >= 3 {
			break
		}

		// The apiserver calls replica a through the Service...
		before := a.nodeReviews(t)
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("dry-run create: %v", err)
		}
		calls++
		if a.nodeReviews(t) == before {
			failures++
			t.Errorf("%s: the apiserver could not call replica a (failurePolicy Ignore hid it)", time.Since(begin).Round(time.Second))
		}
		// ... and replica b serves a certificate that the live caBundle trusts.
		live, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwcName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.served(live.Webhooks[0].ClientConfig.CABundle, svc+"."+ns+".svc"); err != nil {
			failures++
			t.Errorf("%s: replica b not trusted by the caBundle: %v", time.Since(begin).Round(time.Second), err)
		}
		if failures > 5 {
			t.FailNow()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%d apiserver calls over %s: %d CAs, %d serving certificates, no failure", calls, time.Since(begin).Round(time.Second), len(cas), len(servings))
	logs := a.log(t) + b.log(t)
	for _, want := range []string{selfsigned.ReasonIssueServing, selfsigned.ReasonStageCA, selfsigned.ReasonPromoteCA, selfsigned.ReasonDropPrevious} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the replicas' logs", want)
		}
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Error("the replicas logged errors")
	}
}
