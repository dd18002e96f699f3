// Package cluster runs a real, throwaway Kubernetes control plane as local processes on 127.0.0.1:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, plus optionally kwok (fake
// nodes with heartbeats and resource metrics), metrics-server (registered as
// v1beta1.metrics.k8s.io), the overcommit webhook (registered through a
// MutatingWebhookConfiguration) and kubemark hollow kubelets. The demo and the e2e tests use it.
//
// Services that the apiserver must call (the webhook, metrics-server) are registered as
// ExternalName Services pointing at localhost: the apiserver resolves them to
// https://localhost:<port> and verifies the serving certificate for <service>.<namespace>.svc.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Options configures Start.
type Options struct {
	// BinDir holds the binaries hack/build-tools.sh builds (kube-apiserver, etcd, ...).
	BinDir string
	// WorkDir holds certificates, kubeconfigs, data and logs. Empty: a new temporary directory,
	// removed by Stop unless Keep is set. A given WorkDir must be empty or absent, and is never
	// removed.
	WorkDir string
	// Keep leaves a temporary WorkDir in place after Stop (for reading the logs).
	Keep bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Webhook runs the overcommit webhook and registers it; nil leaves it out.
	Webhook *WebhookOptions
	// NodePolicy selects policy mode: the node policy is the MutatingAdmissionPolicy (installed
	// with the default settings) and the webhook, if any, is registered for pods only.
	NodePolicy bool
	// MetricsServer runs metrics-server and registers v1beta1.metrics.k8s.io.
	MetricsServer bool
	// Kwok runs kwok for nodes annotated kwok.x-k8s.io/node=fake (see KwokNode).
	Kwok bool
	// KwokHeartbeat replaces the interval of kwok's node-heartbeat stage (upstream: a random
	// delay between 20 s and 25 s). Zero keeps kwok's own.
	KwokHeartbeat time.Duration
}

// WebhookOptions configures the overcommit webhook process.
type WebhookOptions struct {
	// Binary is the webhook executable; empty means <BinDir>/overcommit-webhook.
	Binary string
	// Args are extra flags (policy flags) after the ones the runner sets.
	Args []string
	// Env are extra environment variables ("NAME=value"), e.g. what the Deployment sets.
	Env []string
	// Pods also registers the pods.overcommit.dev webhook (sidecar injection).
	Pods bool
	// Kubeconfig, when set, returns the kubeconfig the webhook connects with instead of an
	// admin (system:masters) one, e.g. a ServiceAccount token bound to the RBAC of deploy/. It
	// runs once the apiserver is up, before the webhook starts.
	Kubeconfig func(ctx context.Context, c *Cluster) (string, error)
	// ClientAuth makes the webhook require client certificates (--client-ca-file) and the
	// apiserver present one, through its AdmissionConfiguration (see writeAdmissionConfig).
	ClientAuth bool
	// Pprof serves the webhook's Go profiles on a loopback port of their own
	// (WebhookPprofAddr, SaveWebhookProfile).
	Pprof bool
}

// Cluster is a running local control plane.
type Cluster struct {
	opts        Options
	log         io.Writer
	workDir     string
	ownsWorkDir bool

	ca           *CA // cluster CA: apiserver serving and client certs, and every serving cert
	frontProxyCA *CA // signs the apiserver's proxy client cert for the aggregation layer

	etcdURL    string
	apiPort    int
	kubeconfig string
	restConfig *rest.Config
	client     kubernetes.Interface

	mu       sync.Mutex
	procs    []*process // control plane, in start order
	kubelets []*Kubelet

	webhook       *webhookState
	metricsServer *metricsServerState
	kwok          *kwokState
}

// startAttempts bounds the starts of a cluster in a work dir of its own: ports are picked free,
// then released for the component to bind, and another process on the machine may take one in
// between.
const startAttempts = 3

// Start brings up the control plane and the optional components and waits until each is ready.
// On any failure it stops what it started and returns an error that includes the tail of the
// failing component's log. A component that lost its port to another process is retried from
// scratch, up to startAttempts times, when Start made the work dir.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, o)
		if err == nil || o.WorkDir != "" || attempt == startAttempts || !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			return c, err
		}
		if o.Log != nil {
			fmt.Fprintf(o.Log, "[cluster] a port was taken while starting; starting again (attempt %d of %d)\n", attempt+1, startAttempts)
		}
	}
}

func start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.BinDir == "" {
		return nil, errors.New("cluster: Options.BinDir is required")
	}
	bin, err := filepath.Abs(o.BinDir)
	if err != nil {
		return nil, fmt.Errorf("cluster: resolve bin dir: %w", err)
	}
	o.BinDir = bin
	c = &Cluster{opts: o, log: o.Log}
	if c.log == nil {
		c.log = discard
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "overcommit-cluster-")
		if err != nil {
			return nil, fmt.Errorf("cluster: create work dir: %w", err)
		}
		c.workDir, c.ownsWorkDir = dir, true
	} else {
		// A used work dir would bring back an old etcd and old certificates.
		if entries, err := os.ReadDir(o.WorkDir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("cluster: work dir %s is not empty", o.WorkDir)
		}
		if err := os.MkdirAll(o.WorkDir, 0o700); err != nil {
			return nil, fmt.Errorf("cluster: create work dir: %w", err)
		}
		c.workDir, err = filepath.Abs(o.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("cluster: resolve work dir: %w", err)
		}
	}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup after failed start: %w", stopErr))
			}
			c = nil
		}
	}()
	if err := os.MkdirAll(c.logDir(), 0o700); err != nil {
		return c, fmt.Errorf("cluster: create log dir: %w", err)
	}
	c.logf("work dir %s", c.workDir)

	begin := time.Now()
	if err := c.writeCerts(); err != nil {
		return c, err
	}
	if err := c.startEtcd(ctx); err != nil {
		return c, err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return c, err
	}
	// Everything below only needs the apiserver: start it all, then wait for all at once.
	cm, err := c.launchControllerManager()
	if err != nil {
		return c, err
	}
	sched, err := c.launchScheduler()
	if err != nil {
		return c, err
	}
	if o.Kwok {
		if err := c.launchKwok(); err != nil {
			return c, err
		}
	}
	if o.MetricsServer {
		if err := c.launchMetricsServer(); err != nil {
			return c, err
		}
	}
	if o.Webhook != nil {
		if err := c.launchWebhook(ctx); err != nil {
			return c, err
		}
	}
	// Concurrent waits also make each progress line tell when that component was ready.
	waits := []func(context.Context) error{
		func(ctx context.Context) error { return c.waitControllerManager(ctx, cm) },
		func(ctx context.Context) error { return c.waitHealthz(ctx, sched, "kube-scheduler") },
	}
	if o.Kwok {
		waits = append(waits, c.waitKwok)
	}
	if o.MetricsServer {
		waits = append(waits, c.registerMetricsServer)
	}
	if o.Webhook != nil {
		waits = append(waits, func(ctx context.Context) error {
			if err := c.waitWebhook(ctx); err != nil {
				return err
			}
			return c.InstallWebhookConfiguration(ctx)
		})
	}
	if o.NodePolicy {
		waits = append(waits, func(ctx context.Context) error {
			return c.InstallNodePolicy(ctx, policy.DefaultSettings())
		})
	}
	if err := waitAll(ctx, waits); err != nil {
		return c, err
	}
	c.logf("cluster ready in %s (kubeconfig %s)", since(begin), c.kubeconfig)
	return c, nil
}

// Kubeconfig is the path of the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Client returns an admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// WorkDir is where certificates, kubeconfigs, data and logs live.
func (c *Cluster) WorkDir() string { return c.workDir }

// LogFile returns the log file of a component ("etcd", "kube-apiserver", "kwok",
// "metrics-server", "overcommit-webhook", "kubelet-<node>", ...).
func (c *Cluster) LogFile(component string) string {
	return filepath.Join(c.workDir, "logs", component+".log")
}

// CA returns the PEM certificate of the cluster CA, which signs every serving certificate.
func (c *Cluster) CA() []byte { return c.ca.CertPEM }

// PIDs returns the process ids of every process the cluster runs now.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range c.allProcsLocked() {
		if !p.exited() {
			pids = append(pids, p.pid())
		}
	}
	return pids
}

func (c *Cluster) allProcsLocked() []*process {
	ps := append([]*process(nil), c.procs...)
	for _, k := range c.kubelets {
		ps = append(ps, k.proc)
	}
	if c.kwok != nil && c.kwok.proc != nil {
		ps = append(ps, c.kwok.proc)
	}
	if c.metricsServer != nil && c.metricsServer.proc != nil {
		ps = append(ps, c.metricsServer.proc)
	}
	if c.webhook != nil && c.webhook.proc != nil {
		ps = append(ps, c.webhook.proc)
	}
	return ps
}

// Stop kills every process (SIGTERM, then SIGKILL after a grace period, to the whole process
// group) and removes the work dir if Start created it and Keep is unset. It is safe to call more
// than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	var leaves []*process
	kubelets := c.kubelets
	for _, k := range kubelets {
		leaves = append(leaves, k.proc)
	}
	c.kubelets = nil
	if c.webhook != nil && c.webhook.proc != nil {
		leaves = append(leaves, c.webhook.proc)
		c.webhook.proc = nil
	}
	if c.metricsServer != nil && c.metricsServer.proc != nil {
		leaves = append(leaves, c.metricsServer.proc)
		c.metricsServer.proc = nil
	}
	if c.kwok != nil && c.kwok.proc != nil {
		leaves = append(leaves, c.kwok.proc)
		c.kwok.proc = nil
	}
	core := c.procs
	c.procs = nil
	c.mu.Unlock()

	var errs []error
	// Clients of the apiserver first (in parallel: each may take its grace period), then the
	// control plane in reverse start order, etcd last.
	errs = append(errs, stopAll(leaves)...)
	var etcd *process
	var rest []*process
	for _, p := range core {
		if p.name == "etcd" {
			etcd = p
		} else {
			rest = append(rest, p)
		}
	}
	errs = append(errs, stopAll(rest)...)
	if etcd != nil {
		if err := etcd.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range kubelets {
		k.cleanup()
	}
	if c.ownsWorkDir && !c.opts.Keep && c.workDir != "" {
		if err := os.RemoveAll(c.workDir); err != nil {
			errs = append(errs, fmt.Errorf("remove work dir: %w", err))
		}
	} else if c.workDir != "" {
		c.logf("work dir kept: %s", c.workDir)
	}
	return errors.Join(errs...)
}

// waitAll runs the waits concurrently and returns the first error, cancelling the others.
func waitAll(ctx context.Context, waits []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(waits))
	for _, w := range waits {
		go func() { errs <- w(ctx) }()
	}
	var first error
	for range waits {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func stopAll(ps []*process) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.stop()
		}()
	}
	wg.Wait()
	return errs
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "[cluster] "+format+"\n", args...)
}

func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.workDir}, elem...)...)
}

func (c *Cluster) bin(name string) string {
	return filepath.Join(c.opts.BinDir, name)
}

func (c *Cluster) logDir() string { return c.path("logs") }

// start launches a component and records it for Stop.
func (c *Cluster) start(name, binary string, args []string, env ...string) (*process, error) {
	p, err := startProcess(name, binary, args, c.logDir(), env)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// apiServerURL is the apiserver's address as clients use it.
func (c *Cluster) apiServerURL() string {
	return "https://" + hostPort(c.apiPort)
}

// writeKubeconfig writes a kubeconfig for a client certificate issued to user (in groups).
func (c *Cluster) writeKubeconfig(file, user string, groups ...string) (string, error) {
	kp, err := c.ca.IssueClient(user, groups, certValidity)
	if err != nil {
		return "", fmt.Errorf("issuing the client certificate of %s: %w", user, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.apiServerURL(), CertificateAuthorityData: c.ca.CertPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	cfg.CurrentContext = "local"
	path := c.path("kubeconfig", file)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create kubeconfig dir: %w", err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return path, nil
}

// httpGet fetches url with client and fails unless the status is 200.
func httpGet(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	return body, nil
}
