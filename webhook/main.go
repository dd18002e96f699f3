// Command overcommit-webhook is the mutating admission webhook that overcommits opted-in nodes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/overcommit-dev/overcommit/shared/version"
	"github.com/overcommit-dev/overcommit/webhook/gcfloor"
	"github.com/overcommit-dev/overcommit/webhook/nodes"
	"github.com/overcommit-dev/overcommit/webhook/pods"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
	"github.com/overcommit-dev/overcommit/webhook/settings"
	"github.com/overcommit-dev/overcommit/webhook/templates"
	"github.com/overcommit-dev/overcommit/webhook/usage"
)

func main() {
	o, err := parseOptions(os.Args[1:])
	if errors.Is(err, pflagHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "overcommit-webhook: %v\n", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Println(version.Version)
		return
	}
	applyMemoryLimit(o.logger(), os.LookupEnv, debug.SetMemoryLimit)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		o.logger().Error("overcommit-webhook failed", "err", err)
		os.Exit(1)
	}
}

// clients are the webhook's API clients; nil when there is no cluster connection.
type clients struct {
	kube    kubernetes.Interface
	metrics metricsclient.Interface
}

func run(ctx context.Context, o *options) error {
	log := o.logger()
	cfg, err := clusterConfig(o, log)
	if err != nil {
		return err
	}
	var c *clients
	if cfg != nil {
		if c, err = newClients(cfg); err != nil {
			return err
		}
	}
	return serve(ctx, o, log, c)
}

func newClients(cfg *rest.Config) (*clients, error) {
	// Built-in types travel as protobuf: the pod informer's initial list of a large cluster costs
	// less CPU and garbage to decode than JSON. metrics.k8s.io keeps the default (JSON), whatever
	// server backs it.
	kubeCfg := rest.CopyConfig(cfg)
	kubeCfg.ContentType = "application/vnd.kubernetes.protobuf"
	kubeCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kube, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return nil, fmt.Errorf("creating kubernetes client: %w", err)
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating metrics client: %w", err)
	}
	return &clients{kube: kube, metrics: mc}, nil
}

// serve runs the webhook with the clients c (nil: no cluster) until ctx ends.
func serve(ctx context.Context, o *options, log *slog.Logger, c *clients) error {
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	log.Info("starting overcommit-webhook", "version", version.Version,
		"namespace", o.namespace, "settingsConfigMap", o.settingsConfigMap)
	if c == nil && o.selfSignedSecret != "" {
		return fmt.Errorf("--self-signed-secret needs a cluster connection (in-cluster or --kubeconfig)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nodeHandler := newNodeHandler(o, log, reg)
	podHandler := newPodHandler(o, log, reg)
	readyChecks := map[string]healthz.Checker{}
	var tlsProvisioner *selfsigned.Provisioner
	if c != nil {
		var err error
		if tlsProvisioner, err = connect(ctx, o, log, reg, c, nodeHandler, podHandler, readyChecks); err != nil {
			return err
		}
	}
	startGCFloor(ctx, o, log)
	srv := newAdmissionServer(o, log, reg, nodeHandler, podHandler)
	readyChecks["webhook"] = srv.StartedChecker()
	return runServers(ctx, o, log, reg, srv, tlsProvisioner, readyChecks)
}

// newNodeHandler is the node handler as it runs without a cluster: with no settings it leaves
// opted-in nodes unchanged. connect gives it the settings and the usage source.
func newNodeHandler(o *options, log *slog.Logger, reg prometheus.Registerer) *nodes.Handler {
	return &nodes.Handler{Metrics: nodes.NewMetrics(reg), Log: log,
		Settings: settings.Unavailable(fmt.Sprintf("the webhook has no cluster connection to read the settings ConfigMap %s/%s", o.namespace, o.settingsConfigMap))}
}

// newPodHandler is the pod handler as it runs without a cluster: with no templates, pods asking
// for a sidecar are denied. connect gives it the template store.
func newPodHandler(o *options, log *slog.Logger, reg prometheus.Registerer) *pods.Handler {
	return &pods.Handler{Namespace: o.namespace, Metrics: pods.NewMetrics(reg), Log: log}
}

// connect starts what the cluster connection c feeds the handlers: the settings, the usage
// source, the node cache with its gauges (and the target publisher), the template store and the self-signed certificate (nil
// without --self-signed-secret). Each one the webhook must wait for adds its check to ready.
func connect(ctx context.Context, o *options, log *slog.Logger, reg prometheus.Registerer, c *clients,
	nodeHandler *nodes.Handler, podHandler *pods.Handler, ready map[string]healthz.Checker) (*selfsigned.Provisioner, error) {
	watcher, err := startSettings(ctx, o, log, reg, c.kube)
	if err != nil {
		return nil, err
	}
	nodeHandler.Settings = watcher.Pointer()
	// Not ready before the settings are loaded: a replica that answered "no settings" during
	// a rollout would store the kubelet's allocatable under running pods.
	ready["settings"] = synced(watcher.HasSynced, errors.New("the settings ConfigMap is not loaded yet"))
	src, err := startUsage(ctx, o, log, reg, c)
	if err != nil {
		return nil, err
	}
	nodeHandler.Usage = src
	// The opted-in nodes, in both modes: the node gauges (is allocatable what the policy set, and
	// how much it gained) and, in policy mode, the publisher read them.
	nodes := usage.NewNodeCache(c.kube)
	nodes.Run(ctx)
	reg.MustRegister(usage.NewNodeCollector(nodes))
	if o.publishTargets {
		startPublisher(ctx, o, log, reg, c.kube, nodes, src, watcher)
	}
	store, err := startTemplates(ctx, o, log, reg, c.kube)
	if err != nil {
		return nil, err
	}
	podHandler.Templates = store
	// Not ready before the templates are loaded, or the first pods would be denied.
	ready["sidecar-templates"] = synced(store.HasSynced, templates.ErrNotReady)
	if o.selfSignedSecret == "" {
		return nil, nil
	}
	tlsProvisioner, err := startSelfSigned(ctx, o, log, c.kube)
	if err != nil {
		return nil, err
	}
	ready["certificate"] = tlsProvisioner.Checker
	return tlsProvisioner, nil
}

// synced is a readiness check that fails with err until hasSynced reports true.
func synced(hasSynced func() bool, err error) healthz.Checker {
	return func(*http.Request) error {
		if !hasSynced() {
			return err
		}
		return nil
	}
}

// startSettings watches the settings ConfigMap.
func startSettings(ctx context.Context, o *options, log *slog.Logger, reg prometheus.Registerer, kube kubernetes.Interface) (*settings.Watcher, error) {
	watcher, err := settings.New(kube, o.namespace, o.settingsConfigMap, settings.Options{Log: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	watcher.Run(ctx)
	return watcher, nil
}

// startUsage runs the usage source: the pods' requests per node and metrics.k8s.io's usage.
func startUsage(ctx context.Context, o *options, log *slog.Logger, reg prometheus.Registerer, c *clients) (*usage.Source, error) {
	src, err := usage.NewSource(c.kube, c.metrics, usage.Options{RefreshInterval: o.metricsRefresh, History: o.history, Log: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	src.Run(ctx)
	return src, nil
}

// startPublisher runs the publisher of the usage policy's targets and the nodes' requests
// (--publish-usage-targets).
func startPublisher(ctx context.Context, o *options, log *slog.Logger, reg prometheus.Registerer, kube kubernetes.Interface, nodes *usage.NodeCache, src *usage.Source, watcher *settings.Watcher) {
	pub := usage.NewPublisher(kube, nodes, src, watcher.Pointer(), o.namespace, o.settingsConfigMap, usage.PublishOptions{
		Interval: o.metricsRefresh, Threshold: o.targetThreshold, Log: log, Registerer: reg})
	go pub.Run(ctx)
}

// startTemplates watches the sidecar templates in the webhook's namespace.
func startTemplates(ctx context.Context, o *options, log *slog.Logger, reg prometheus.Registerer, kube kubernetes.Interface) (*templates.Store, error) {
	store, err := templates.New(kube, o.namespace, templates.Options{Log: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	store.Run(ctx)
	return store, nil
}

// startSelfSigned runs the provisioner of the webhook's own certificate (--self-signed-secret).
func startSelfSigned(ctx context.Context, o *options, log *slog.Logger, kube kubernetes.Interface) (*selfsigned.Provisioner, error) {
	sc := o.selfSigned
	sc.Client, sc.Namespace, sc.SecretName, sc.ServiceName = kube, o.namespace, o.selfSignedSecret, o.serviceName
	sc.WebhookConfigName, sc.CertDir, sc.Log = o.webhookConfigName, o.certDir, log
	p, err := selfsigned.New(sc)
	if err != nil {
		return nil, err
	}
	go p.Run(ctx)
	return p, nil
}

// startGCFloor runs the GC floor (--gc-floor) unless GOGC is set, which then decides alone.
func startGCFloor(ctx context.Context, o *options, log *slog.Logger) {
	floor := o.gcFloor.Value()
	if floor <= 0 {
		return
	}
	if os.Getenv("GOGC") != "" {
		log.Info("GOGC is set; --gc-floor is ignored", "GOGC", os.Getenv("GOGC"))
		return
	}
	go gcfloor.Run(ctx, uint64(floor), 100, 2*time.Second, log)
}

// clusterConfig returns the connection for the settings, templates and usage caches, or nil when
// there is no cluster to connect to: the webhook still serves, but without settings it leaves
// opted-in nodes unchanged, and pods asking for sidecars are denied.
func clusterConfig(o *options, log *slog.Logger) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", o.kubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		log.Warn("no cluster connection (not in a cluster and no --kubeconfig); without the settings ConfigMap, opted-in nodes are left unchanged", "err", err)
		return nil, nil
	}
	cfg.UserAgent = "overcommit-webhook/" + version.Version
	return cfg, nil
}
