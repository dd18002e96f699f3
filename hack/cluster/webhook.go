package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/internal/freeport"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Names of the webhook's registration; deploy/ uses the same.
const (
	WebhookNamespace     = names.Namespace
	WebhookServiceName   = "overcommit-webhook"
	WebhookConfigName    = "overcommit"
	NodeWebhookName      = names.NodeWebhookName
	PodWebhookName       = "pods.overcommit.dev"
	NodeWebhookPath      = "/mutate-node"
	PodWebhookPath       = "/mutate-pod"
	webhookTimeoutSecond = 5
)

// WebhookConfig says where the MutatingWebhookConfiguration points.
type WebhookConfig struct {
	// Port is the webhook's HTTPS port, reached through the ExternalName Service.
	Port int32
	// CABundle is the PEM CA that signed the webhook's serving certificate.
	CABundle []byte
	// Pods also registers pods.overcommit.dev (sidecar injection).
	Pods bool
	// NoNodes leaves nodes.overcommit.dev out: in policy mode the apiserver runs the node policy.
	NoNodes bool
}

// WebhookConfiguration returns the MutatingWebhookConfiguration for the overcommit webhook.
func WebhookConfiguration(cfg WebhookConfig) *admissionregistrationv1.MutatingWebhookConfiguration {
	none := admissionregistrationv1.SideEffectClassNone
	ignore := admissionregistrationv1.Ignore
	timeout := int32(webhookTimeoutSecond)
	clientConfig := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{
				Namespace: WebhookNamespace,
				Name:      WebhookServiceName,
				Path:      &path,
				Port:      &cfg.Port,
			},
			CABundle: cfg.CABundle,
		}
	}
	rule := func(op admissionregistrationv1.OperationType, resource string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{op},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{""},
				APIVersions: []string{"v1"},
				Resources:   []string{resource},
			},
		}
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         NodeWebhookName,
			ClientConfig: clientConfig(NodeWebhookPath),
			// A rule for nodes does not cover nodes/status: kubelet heartbeats are UPDATEs of
			// the subresource.
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule(admissionregistrationv1.Create, "nodes"),
				rule(admissionregistrationv1.Update, "nodes/status"),
			},
			// Only opted-in nodes ever reach the webhook.
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{names.EnabledLabel: names.EnabledValue}},
			// The webhook must never block a heartbeat.
			FailurePolicy:           &ignore,
			TimeoutSeconds:          &timeout,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if cfg.NoNodes {
		mwc.Webhooks = nil
	}
	if cfg.Pods {
		ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
		fail := admissionregistrationv1.Fail
		mwc.Webhooks = append(mwc.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name:         PodWebhookName,
			ClientConfig: clientConfig(PodWebhookPath),
			Rules:        []admissionregistrationv1.RuleWithOperations{rule(admissionregistrationv1.Create, "pods")},
			NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{names.SidecarInjectionLabel: names.SidecarInjectionEnabled},
				MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key:      corev1.LabelMetadataName,
					Operator: metav1.LabelSelectorOpNotIn,
					Values:   append(names.SystemNamespaces(), WebhookNamespace),
				}},
			},
			// Only pods that ask for a sidecar are sent, so the Fail policy below can never block
			// a pod that did not ask.
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "asks-for-sidecars",
				Expression: "has(object.metadata.annotations) && '" + names.SidecarInjectAnnotation + "' in object.metadata.annotations",
			}},
			// Other webhooks may add containers after us; a second pass injects into those too.
			ReinvocationPolicy: &ifNeeded,
			// A pod that asked for a sidecar must not start without it when the webhook is down:
			// its controller retries. The namespaceSelector keeps the webhook's own namespace out,
			// so the webhook itself can always start.
			FailurePolicy:           &fail,
			TimeoutSeconds:          &timeout,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	return mwc
}

// InstallWebhook creates or updates the webhook's namespace, its ExternalName Service (to
// localhost:Port) and the MutatingWebhookConfiguration.
func InstallWebhook(ctx context.Context, cs kubernetes.Interface, cfg WebhookConfig) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: WebhookNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", WebhookNamespace, err)
	}
	if err := ensureExternalNameService(ctx, cs, WebhookNamespace, WebhookServiceName, cfg.Port); err != nil {
		return err
	}
	want := WebhookConfiguration(cfg)
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	existing, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := api.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create MutatingWebhookConfiguration %s: %w", want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get MutatingWebhookConfiguration %s: %w", want.Name, err)
	default:
		existing.Webhooks = want.Webhooks
		if _, err := api.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update MutatingWebhookConfiguration %s: %w", want.Name, err)
		}
	}
	return nil
}

type webhookState struct {
	proc        *process
	binary      string
	args        []string
	port        int
	metricsPort int
	probePort   int
	pprofPort   int // 0: no profiles
	certDir     string
	// clientCAFile is the CA of the apiserver's client certificate (Options.ClientAuth).
	clientCAFile string
}

func (c *Cluster) launchWebhook(ctx context.Context) error {
	o := c.opts.Webhook
	binary := o.Binary
	if binary == "" {
		binary = c.bin("overcommit-webhook")
	}
	ports, err := freeport.Ports(4)
	if err != nil {
		return err
	}
	// With client certificates, the port was chosen with the apiserver's kubeconfig.
	var clientCAFile string
	if pre := c.webhook; pre != nil {
		ports[0], clientCAFile = pre.port, pre.clientCAFile
	}
	var kc string
	if o.Kubeconfig != nil {
		if kc, err = o.Kubeconfig(ctx, c); err != nil {
			return fmt.Errorf("webhook kubeconfig: %w", err)
		}
	} else if kc, err = c.writeKubeconfig("overcommit-webhook.kubeconfig", "overcommit-webhook", "system:masters"); err != nil {
		return err
	}
	// The webhook leaves nodes unchanged without its settings: make sure they exist (a caller
	// that wants other settings writes them first).
	if _, err := c.client.CoreV1().ConfigMaps(names.Namespace).Get(ctx, names.SettingsConfigMap, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if err := EnsureSettings(ctx, c.client, policy.DefaultSettings()); err != nil {
			return err
		}
	}
	st := &webhookState{binary: binary, port: ports[0], metricsPort: ports[1], probePort: ports[2],
		certDir: c.path("overcommit-webhook", "certs"), clientCAFile: clientCAFile}
	if _, err := c.ca.servingFiles(WebhookServiceName,
		[]string{serviceDNS(WebhookServiceName, WebhookNamespace), "localhost", "127.0.0.1"},
		st.certDir+"/tls.crt", st.certDir+"/tls.key"); err != nil {
		return err
	}
	st.args = append([]string{
		"--host=127.0.0.1",
		"--port=" + strconv.Itoa(st.port),
		"--cert-dir=" + st.certDir,
		"--metrics-bind-address=" + hostPort(st.metricsPort),
		"--health-probe-bind-address=" + hostPort(st.probePort),
		"--kubeconfig=" + kc,
	}, o.Args...)
	if o.ClientAuth {
		st.args = append(st.args, "--client-ca-file="+clientCAFile)
	}
	if o.Pprof {
		st.pprofPort = ports[3]
		st.args = append(st.args, "--pprof-bind-address="+hostPort(st.pprofPort))
	}
	if c.opts.NodePolicy {
		// As deploy/modes/policy runs it: the in-apiserver policy reads the usage targets.
		st.args = append(st.args, "--publish-usage-targets")
	}
	c.mu.Lock()
	c.webhook = st
	c.mu.Unlock()
	return c.runWebhook()
}

func (c *Cluster) runWebhook() error {
	st := c.webhook
	p, err := startProcess("overcommit-webhook", st.binary, st.args, c.logDir(), c.opts.Webhook.Env)
	if err != nil {
		return err
	}
	p.healthURL = "http://" + hostPort(st.probePort) + "/readyz"
	c.mu.Lock()
	st.proc = p
	c.mu.Unlock()
	return nil
}

func (c *Cluster) waitWebhook(ctx context.Context) error {
	p := c.webhook.proc
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := p.waitFor(ctx, "ready", 60*time.Second, func(ctx context.Context) error {
		_, err := httpGet(ctx, hc, p.healthURL)
		return err
	}); err != nil {
		return err
	}
	c.logf("overcommit-webhook ready on %s (%s)", hostPort(c.webhook.port), since(p.started))
	return nil
}

// InstallWebhookConfiguration registers this cluster's webhook process (see InstallWebhook) and
// waits until the apiserver actually calls it.
func (c *Cluster) InstallWebhookConfiguration(ctx context.Context) error {
	if c.webhook == nil {
		return errors.New("the webhook is not part of this cluster (Options.Webhook)")
	}
	begin := time.Now()
	cfg := WebhookConfig{Port: int32(c.webhook.port), CABundle: c.ca.CertPEM, Pods: c.opts.Webhook.Pods, NoNodes: c.opts.NodePolicy}
	if err := InstallWebhook(ctx, c.client, cfg); err != nil {
		return err
	}
	if cfg.NoNodes {
		c.logf("MutatingWebhookConfiguration %s installed, pods only (%s)", WebhookConfigName, since(begin))
		return nil
	}
	if err := c.waitWebhookCalled(ctx); err != nil {
		return err
	}
	c.logf("MutatingWebhookConfiguration %s active (%s)", WebhookConfigName, since(begin))
	return nil
}

// waitWebhookCalled dry-runs the creation of an opted-in node until the apiserver returns it
// mutated by the webhook: the apiserver loads webhook configurations through an informer, so a
// freshly created one takes effect a moment later. Dry run is allowed because the webhook
// declares sideEffects: None; nothing is stored.
func (c *Cluster) waitWebhookCalled(ctx context.Context) error {
	name := "overcommit-probe-" + rand.String(6)
	node := KwokNode(name, "1", "1Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Annotations[names.CPURatioAnnotation] = "2"
	// kwok must not pick up the probe (dry run stores nothing, but be explicit).
	delete(node.Annotations, KwokNodeAnnotation)
	return c.webhook.proc.waitFor(ctx, "called by the apiserver", 30*time.Second, func(ctx context.Context) error {
		got, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return fmt.Errorf("dry-run create of an opted-in node: %w", err)
		}
		if _, ok := got.Annotations[names.AppliedAnnotation]; !ok {
			return fmt.Errorf("dry-run create of an opted-in node came back without %s", names.AppliedAnnotation)
		}
		return nil
	})
}

// StopWebhook kills the webhook process; its registration stays, so the apiserver's calls fail
// and failurePolicy Ignore applies.
func (c *Cluster) StopWebhook() error {
	c.mu.Lock()
	st := c.webhook
	var p *process
	if st != nil {
		p, st.proc = st.proc, nil
	}
	c.mu.Unlock()
	if st == nil {
		return errors.New("the webhook is not part of this cluster (Options.Webhook)")
	}
	if err := p.stop(); err != nil {
		return err
	}
	c.logf("overcommit-webhook stopped")
	return nil
}

// StartWebhook restarts the webhook after StopWebhook, with the same flags and port, and waits
// until it is ready.
func (c *Cluster) StartWebhook(ctx context.Context) error {
	c.mu.Lock()
	st := c.webhook
	c.mu.Unlock()
	if st == nil {
		return errors.New("the webhook is not part of this cluster (Options.Webhook)")
	}
	if st.proc != nil && !st.proc.exited() {
		return errors.New("the webhook is already running")
	}
	if err := c.runWebhook(); err != nil {
		return err
	}
	return c.waitWebhook(ctx)
}

// WebhookClientCAFile is the CA the webhook requires client certificates from
// (WebhookOptions.ClientAuth), or "".
func (c *Cluster) WebhookClientCAFile() string {
	if c.webhook == nil {
		return ""
	}
	return c.webhook.clientCAFile
}

// WebhookPort is the webhook's HTTPS port on 127.0.0.1.
func (c *Cluster) WebhookPort() int {
	if c.webhook == nil {
		return 0
	}
	return c.webhook.port
}

// WebhookPID is the process id of the running webhook, or 0 (the load generator reads its CPU
// time and memory from /proc).
func (c *Cluster) WebhookPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.webhook == nil || c.webhook.proc == nil {
		return 0
	}
	return c.webhook.proc.pid()
}

// WebhookMetricsAddr is the host:port of the webhook's metrics endpoint.
func (c *Cluster) WebhookMetricsAddr() string {
	if c.webhook == nil {
		return ""
	}
	return hostPort(c.webhook.metricsPort)
}

// WebhookPprofAddr is the host:port of the webhook's /debug/pprof/ (WebhookOptions.Pprof), or "".
func (c *Cluster) WebhookPprofAddr() string {
	if c.webhook == nil || c.webhook.pprofPort == 0 {
		return ""
	}
	return hostPort(c.webhook.pprofPort)
}

// SaveWebhookProfile writes one of the webhook's Go profiles to file: profile is the part after
// /debug/pprof/, such as "heap?gc=1" or "profile?seconds=10" (the webhook serves them with
// WebhookOptions.Pprof).
func (c *Cluster) SaveWebhookProfile(ctx context.Context, profile, file string) error {
	addr := c.WebhookPprofAddr()
	if addr == "" {
		return errors.New("the webhook does not serve profiles (WebhookOptions.Pprof)")
	}
	body, err := httpGet(ctx, http.DefaultClient, "http://"+addr+"/debug/pprof/"+profile)
	if err != nil {
		return fmt.Errorf("fetching the webhook's profile: %w", err)
	}
	return writeFile(file, body)
}

// WebhookMetrics returns the webhook's Prometheus metrics in text format.
func (c *Cluster) WebhookMetrics(ctx context.Context) (string, error) {
	if c.webhook == nil {
		return "", errors.New("the webhook is not part of this cluster (Options.Webhook)")
	}
	body, err := httpGet(ctx, &http.Client{Timeout: 5 * time.Second}, "http://"+hostPort(c.webhook.metricsPort)+"/metrics")
	if err != nil {
		return "", fmt.Errorf("webhook metrics: %w", err)
	}
	return string(body), nil
}
