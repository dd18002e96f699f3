// Command overcommit-webhook is the mutating admission webhook that overcommits opted-in nodes.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/overcommit-dev/overcommit/shared/version"
	"github.com/overcommit-dev/overcommit/webhook/admission"
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	nodeHandler := &nodes.Handler{Metrics: nodes.NewMetrics(reg), Log: log,
		Settings: settings.Unavailable(fmt.Sprintf("the webhook has no cluster connection to read the settings ConfigMap %s/%s", o.namespace, o.settingsConfigMap))}
	// Without a cluster there are no templates: pods asking for a sidecar are denied.
	podHandler := &pods.Handler{Namespace: o.namespace, Metrics: pods.NewMetrics(reg), Log: log}
	readyChecks := map[string]healthz.Checker{}
	if c == nil && o.selfSignedSecret != "" {
		return fmt.Errorf("--self-signed-secret needs a cluster connection (in-cluster or --kubeconfig)")
	}
	var tlsProvisioner *selfsigned.Provisioner
	if c != nil {
		watcher, err := settings.New(c.kube, o.namespace, o.settingsConfigMap, settings.Options{Log: log, Registerer: reg})
		if err != nil {
			return err
		}
		watcher.Run(ctx)
		nodeHandler.Settings = watcher.Pointer()
		// Not ready before the settings are loaded: a replica that answered "no settings" during
		// a rollout would store the kubelet's allocatable under running pods.
		readyChecks["settings"] = func(*http.Request) error {
			if !watcher.HasSynced() {
				return errors.New("the settings ConfigMap is not loaded yet")
			}
			return nil
		}
		src, err := usage.NewSource(c.kube, c.metrics, usage.Options{RefreshInterval: o.metricsRefresh, Log: log, Registerer: reg})
		if err != nil {
			return err
		}
		nodeHandler.Usage = src
		src.Run(ctx)
		if o.publishTargets {
			pub := usage.NewPublisher(c.kube, src, watcher.Pointer(), o.namespace, o.settingsConfigMap, usage.PublishOptions{
				Interval: o.metricsRefresh, Threshold: o.targetThreshold, MinRaiseInterval: o.targetMinRaise, Log: log, Registerer: reg})
			go pub.Run(ctx)
		}
		store, err := templates.New(c.kube, o.namespace, templates.Options{Log: log, Registerer: reg})
		if err != nil {
			return err
		}
		store.Run(ctx)
		podHandler.Templates = store
		// Not ready before the templates are loaded, or the first pods would be denied.
		readyChecks["sidecar-templates"] = func(*http.Request) error {
			if !store.HasSynced() {
				return templates.ErrNotReady
			}
			return nil
		}
		if o.selfSignedSecret != "" {
			sc := o.selfSigned
			sc.Client, sc.Namespace, sc.SecretName, sc.ServiceName = c.kube, o.namespace, o.selfSignedSecret, o.serviceName
			sc.WebhookConfigName, sc.CertDir, sc.Log = o.webhookConfigName, o.certDir, log
			tlsProvisioner, err = selfsigned.New(sc)
			if err != nil {
				return err
			}
			go tlsProvisioner.Run(ctx)
			readyChecks["certificate"] = tlsProvisioner.Checker
		}
	}
	wire := admission.NewMetrics(reg)
	if floor := o.gcFloor.Value(); floor > 0 {
		if os.Getenv("GOGC") != "" {
			log.Info("GOGC is set; --gc-floor is ignored", "GOGC", os.Getenv("GOGC"))
		} else {
			go gcfloor.Run(ctx, uint64(floor), 100, 2*time.Second, log)
		}
	}

	srv := admission.NewServer(admission.ServerOptions{
		Host:         o.host,
		Port:         o.port,
		CertDir:      o.certDir,
		ClientCAFile: o.clientCAFile,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			if !o.enableHTTP2 {
				c.NextProtos = []string{"http/1.1"}
			}
		}},
		Log: log,
	})
	// One budget for both paths: the memory bound holds for the process.
	limits := admission.NewLimits()
	reg.MustRegister(limits.Collector())
	srv.Register("/mutate-node", &admission.Webhook{
		Name: "node", Handler: nodeHandler, Metrics: wire, Log: log, OnPanic: nodeHandler.OnPanic, Limits: limits,
	})
	// OnPanic nil denies: a pod admitted without the sidecar it asked for is the silent failure.
	srv.Register("/mutate-pod", &admission.Webhook{Name: "pod", Handler: podHandler, Metrics: wire, Log: log, Limits: limits})
	readyChecks["webhook"] = srv.StartedChecker()

	errs := make(chan error, 4)
	serving := make(chan struct{})
	go func() {
		// The server reads its certificate when it starts: a self-provisioned one must be there.
		if tlsProvisioner != nil {
			select {
			case <-tlsProvisioner.Ready():
			case <-ctx.Done():
				errs <- nil
				return
			}
		}
		close(serving)
		errs <- wrap("webhook server", srv.Start(ctx))
	}()
	probes := http.NewServeMux()
	probes.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{
		"ping": healthz.Ping, "webhook": livenessCheck(serving, srv.StartedChecker())}}))
	probes.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}))
	go func() { errs <- wrap("health probes", listen(ctx, o.probeAddr, probes)) }()
	if o.metricsAddr != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
		go func() { errs <- wrap("metrics", listen(ctx, o.metricsAddr, mux)) }()
	}
	if o.pprofAddr != "" {
		// A listener of its own, on loopback unless the flag names a host: profiles show memory
		// contents and a CPU profile costs CPU, so they must not be reachable wherever
		// scrapers reach /metrics.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		log.Info("serving Go profiles", "addr", o.pprofAddr)
		go func() { errs <- wrap("pprof", listen(ctx, o.pprofAddr, mux)) }()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-errs:
		return err
	}
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

func listen(ctx context.Context, addr string, h http.Handler) error {
	s := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdownCtx)
	}()
	if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
