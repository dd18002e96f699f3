package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/overcommit-dev/overcommit/internal/freeport"
)

const (
	serviceClusterIPRange = "10.0.0.0/24"
	// kubernetesServiceIP is the first address of serviceClusterIPRange, which the apiserver
	// allocates to the default/kubernetes Service; its serving certificate must name it.
	kubernetesServiceIP = "10.0.0.1"

	frontProxyClientName = "front-proxy-client"
)

// auditPolicy records writes to nodes/status at Metadata level (user, verb, response code) and
// nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [update, patch]
  resources:
  - group: ""
    resources: [nodes/status]
- level: None
`

// AuditLogFile is the apiserver's audit log (JSON lines, one audit.k8s.io/v1 Event each): every
// update and patch of nodes/status, with the user who sent it and the response code.
func (c *Cluster) AuditLogFile() string { return c.path("logs", "audit.log") }

// writeCerts creates the CAs and the apiserver's certificates and keys.
func (c *Cluster) writeCerts() error {
	begin := time.Now()
	dir := c.path("pki")
	var err error
	if c.ca, err = newCA(dir, "ca"); err != nil {
		return err
	}
	// A separate CA for the aggregation layer, as kubeadm does: the apiserver trusts
	// X-Remote-User headers only from clients that this CA signed.
	if c.frontProxyCA, err = newCA(dir, "front-proxy-ca"); err != nil {
		return err
	}
	if _, err = c.ca.servingFiles("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "127.0.0.1", kubernetesServiceIP},
		c.path("pki", "apiserver.crt"), c.path("pki", "apiserver.key")); err != nil {
		return err
	}
	if _, err = c.frontProxyCA.clientFiles(frontProxyClientName, nil,
		c.path("pki", "front-proxy-client.crt"), c.path("pki", "front-proxy-client.key")); err != nil {
		return err
	}
	// The apiserver calls kubelets (logs, exec) with this identity.
	if _, err = c.ca.clientFiles("kube-apiserver-kubelet-client", []string{"system:masters"},
		c.path("pki", "apiserver-kubelet-client.crt"), c.path("pki", "apiserver-kubelet-client.key")); err != nil {
		return err
	}
	if err = writeServiceAccountKey(c.path("pki", "sa.key"), c.path("pki", "sa.pub")); err != nil {
		return err
	}
	c.logf("certificates written (%s)", since(begin))
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	begin := time.Now()
	ports, err := freeport.Ports(2)
	if err != nil {
		return err
	}
	client, peer := "http://"+hostPort(ports[0]), "http://"+hostPort(ports[1])
	p, err := c.start("etcd", c.bin("etcd"), []string{
		"--name=default",
		"--data-dir=" + c.path("etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		// A throwaway cluster: fsync buys nothing and costs seconds on slow CI disks.
		"--unsafe-no-fsync",
		"--log-level=warn",
	})
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := p.waitFor(ctx, "healthy", 60*time.Second, func(ctx context.Context) error {
		_, err := httpGet(ctx, hc, client+"/health")
		return err
	}); err != nil {
		return err
	}
	c.etcdURL = client
	c.logf("etcd ready on %s (%s)", client, since(begin))
	return nil
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	begin := time.Now()
	port, err := freeport.Port()
	if err != nil {
		return err
	}
	c.apiPort = port
	pki := func(f string) string { return c.path("pki", f) }
	if err := writeFile(c.path("audit-policy.yaml"), []byte(auditPolicy)); err != nil {
		return err
	}
	var extra []string
	if w := c.opts.Webhook; w != nil && w.ClientAuth {
		file, err := c.writeAdmissionConfig()
		if err != nil {
			return err
		}
		extra = append(extra, "--admission-control-config-file="+file)
	}
	p, err := c.start("kube-apiserver", c.bin("kube-apiserver"), append([]string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + pki("apiserver.crt"),
		"--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=" + serviceClusterIPRange,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,NodeRestriction,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook",
		"--allow-privileged=true",
		// The aggregation layer (metrics.k8s.io through metrics-server).
		"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
		"--proxy-client-key-file=" + pki("front-proxy-client.key"),
		// The default reconciler would publish 127.0.0.1 as the endpoint of default/kubernetes,
		// which Endpoints validation rejects (loopback), and log the failure forever.
		"--endpoint-reconciler-type=none",
		// Every write to nodes/status, with its user and result: how tests count kubelet and
		// kwok status reports and prove that none failed.
		"--audit-policy-file=" + c.path("audit-policy.yaml"),
		"--audit-log-path=" + c.AuditLogFile(),
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--profiling=false",
	}, extra...))
	if err != nil {
		return err
	}
	c.kubeconfig, err = c.writeKubeconfig("admin.kubeconfig", "kubernetes-admin", "system:masters")
	if err != nil {
		return err
	}
	c.restConfig, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return fmt.Errorf("load admin kubeconfig: %w", err)
	}
	// Tests and the demo create many objects; client-go's default 5 QPS would pace them.
	c.restConfig.QPS, c.restConfig.Burst = 100, 200
	c.client, err = kubernetes.NewForConfig(c.restConfig)
	if err != nil {
		return fmt.Errorf("create admin client: %w", err)
	}
	if err := p.waitFor(ctx, "ready", 120*time.Second, func(ctx context.Context) error {
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %.300s", err, body)
		}
		return nil
	}); err != nil {
		return err
	}
	c.logf("kube-apiserver ready on %s (%s)", c.apiServerURL(), since(begin))
	return nil
}

// writeAdmissionConfig makes the apiserver authenticate to the overcommit webhook with a client
// certificate, as a cluster operator does for client-auth installs: an AdmissionConfiguration
// whose webhook plugins read a kubeconfig, whose user entry named after the webhook's Service
// (<service>.<namespace>.svc:<port>; the port may be left out when it is 443) holds the
// certificate and key. The certificate comes from a CA of its own, which the webhook trusts
// (--client-ca-file): a certificate the cluster CA issued to anyone else does not pass.
//
// The apiserver reads the kubeconfig once at start, and the user entry names the port, so the
// webhook's port is chosen here, before the apiserver starts.
func (c *Cluster) writeAdmissionConfig() (string, error) {
	ca, err := newCA(c.path("pki"), "webhook-client-ca")
	if err != nil {
		return "", err
	}
	kp, err := ca.IssueClient("kube-apiserver-webhook-client", nil, certValidity)
	if err != nil {
		return "", fmt.Errorf("issuing the apiserver's webhook client certificate: %w", err)
	}
	port, err := freeport.Port()
	if err != nil {
		return "", err
	}
	c.webhook = &webhookState{port: port, clientCAFile: ca.CertFile}
	user := net.JoinHostPort(serviceDNS(WebhookServiceName, WebhookNamespace), strconv.Itoa(port))
	kc := clientcmdapi.NewConfig()
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	kcFile := c.path("kubeconfig", "admission-webhooks.kubeconfig")
	if err := os.MkdirAll(filepath.Dir(kcFile), 0o700); err != nil {
		return "", fmt.Errorf("create kubeconfig dir: %w", err)
	}
	if err := clientcmd.WriteToFile(*kc, kcFile); err != nil {
		return "", fmt.Errorf("write %s: %w", kcFile, err)
	}
	cfgFile := c.path("admission-config.yaml")
	return cfgFile, writeFile(cfgFile, []byte(admissionConfig(kcFile)))
}

// admissionConfig is an apiserver.config.k8s.io/v1 AdmissionConfiguration that gives both
// webhook plugins the kubeconfig file.
func admissionConfig(kubeconfig string) string {
	plugin := func(name string) string {
		return `- name: ` + name + `
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: ` + strconv.Quote(kubeconfig) + `
`
	}
	return "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n" +
		plugin("MutatingAdmissionWebhook") + plugin("ValidatingAdmissionWebhook")
}

// launchControllerManager starts kube-controller-manager: without it nothing creates service
// accounts (so the ServiceAccount admission plugin rejects every pod), Deployments stay empty
// and deleted namespaces never go away.
func (c *Cluster) launchControllerManager() (*process, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	kc, err := c.writeKubeconfig("controller-manager.kubeconfig", "system:kube-controller-manager")
	if err != nil {
		return nil, err
	}
	p, err := c.start("kube-controller-manager", c.bin("kube-controller-manager"), []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + c.path("controller-manager"),
		"--leader-elect=false",
		// Each controller runs as its own service account, bound by the bootstrap RBAC policy.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.path("pki", "sa.key"),
		"--root-ca-file=" + c.path("pki", "ca.crt"),
		"--cluster-signing-cert-file=" + c.path("pki", "ca.crt"),
		"--cluster-signing-key-file=" + c.path("pki", "ca.key"),
		// kwok's node-heartbeat stage writes every 20-25 s; on a loaded 2-core machine a beat can
		// slip past the default 50 s grace, and a NotReady flap taints the node mid-test.
		"--node-monitor-grace-period=2m",
		"--profiling=false",
	})
	if err != nil {
		return nil, err
	}
	p.healthURL = "https://" + hostPort(port) + "/healthz"
	return p, nil
}

// waitControllerManager waits for its healthz and for the service account controller's first
// work: a default/default ServiceAccount, without which no pod can be created.
func (c *Cluster) waitControllerManager(ctx context.Context, p *process) error {
	if err := c.waitHealthz(ctx, p, "kube-controller-manager"); err != nil {
		return err
	}
	begin := time.Now()
	if err := p.waitFor(ctx, "creating service accounts", 60*time.Second, func(ctx context.Context) error {
		_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("default/default ServiceAccount not created yet")
		}
		return err
	}); err != nil {
		return err
	}
	c.logf("service account default/default present (%s)", since(begin))
	return nil
}

func (c *Cluster) launchScheduler() (*process, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	kc, err := c.writeKubeconfig("scheduler.kubeconfig", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	p, err := c.start("kube-scheduler", c.bin("kube-scheduler"), []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + c.path("scheduler"),
		"--leader-elect=false",
		"--profiling=false",
	})
	if err != nil {
		return nil, err
	}
	p.healthURL = "https://" + hostPort(port) + "/healthz"
	return p, nil
}

// insecureHTTP is for health endpoints of components that serve a self-signed certificate they
// generate themselves (scheduler, controller-manager); nothing secret crosses it.
var insecureHTTP = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

// waitHealthz polls the process's healthURL until it answers 200.
func (c *Cluster) waitHealthz(ctx context.Context, p *process, name string) error {
	if err := p.waitFor(ctx, "healthy", 90*time.Second, func(ctx context.Context) error {
		_, err := httpGet(ctx, insecureHTTP, p.healthURL)
		return err
	}); err != nil {
		return err
	}
	c.logf("%s ready (%s)", name, since(p.started))
	return nil
}
