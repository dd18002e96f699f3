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
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/overcommit-dev/overcommit/shared/version"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/gcfloor"
	"github.com/overcommit-dev/overcommit/webhook/nodes"
	"github.com/overcommit-dev/overcommit/webhook/pods"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		o.logger().Error("overcommit-webhook failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	log := o.logger()
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	log.Info("starting overcommit-webhook", "version", version.Version,
		"defaultCPURatio", o.settings.CPU.Default.String(), "maxCPURatio", o.settings.CPU.Max.String(),
		"defaultMemoryRatio", o.settings.Memory.Default.String(), "maxMemoryRatio", o.settings.Memory.Max.String())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cfg, err := clusterConfig(o, log)
	if err != nil {
		return err
	}
	nodeHandler := &nodes.Handler{Settings: o.settings, Metrics: nodes.NewMetrics(reg), Log: log}
	// Without a cluster there are no templates: pods asking for a sidecar are denied.
	podHandler := &pods.Handler{Namespace: o.namespace, Metrics: pods.NewMetrics(reg), Log: log}
	readyChecks := map[string]healthz.Checker{}
	if cfg == nil && o.selfSignedSecret != "" {
		return fmt.Errorf("--self-signed-secret needs a cluster connection (in-cluster or --kubeconfig)")
	}
	var tlsProvisioner *selfsigned.Provisioner
	if cfg != nil {
		// Built-in types travel as protobuf: the pod informer's initial list of a large cluster
		// costs less CPU and garbage to decode than JSON. metrics.k8s.io keeps the default
		// (JSON), whatever server backs it.
		kubeCfg := rest.CopyConfig(cfg)
		kubeCfg.ContentType = "application/vnd.kubernetes.protobuf"
		kubeCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		kube, err := kubernetes.NewForConfig(kubeCfg)
		if err != nil {
			return fmt.Errorf("creating kubernetes client: %w", err)
		}
		mc, err := metricsclient.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("creating metrics client: %w", err)
		}
		src, err := usage.NewSource(kube, mc, usage.Options{RefreshInterval: o.metricsRefresh, Log: log, Registerer: reg})
		if err != nil {
			return err
		}
		nodeHandler.Usage = src
		src.Run(ctx)
		store, err := templates.New(kube, o.namespace, templates.Options{Log: log, Registerer: reg})
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
		if o.webhookConfigName != "" {
			go publishSettings(ctx, kube, o.webhookConfigName, o.settings, log)
		}
		if o.selfSignedSecret != "" {
			c := o.selfSigned
			c.Client, c.Namespace, c.SecretName, c.ServiceName = kube, o.namespace, o.selfSignedSecret, o.serviceName
			c.WebhookConfigName, c.CertDir, c.Log = o.webhookConfigName, o.certDir, log
			tlsProvisioner, err = selfsigned.New(c)
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

	srv := webhook.NewServer(webhook.Options{
		Host:    o.host,
		Port:    o.port,
		CertDir: o.certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			if !o.enableHTTP2 {
				c.NextProtos = []string{"http/1.1"}
			}
		}},
	})
	srv.Register("/mutate-node", &admission.Webhook{
		Name: "node", Handler: nodeHandler, Metrics: wire, Log: log, OnPanic: nodeHandler.OnPanic,
	})
	// OnPanic nil denies: a pod admitted without the sidecar it asked for is the silent failure.
	srv.Register("/mutate-pod", &admission.Webhook{Name: "pod", Handler: podHandler, Metrics: wire, Log: log})
	readyChecks["webhook"] = srv.StartedChecker()

	errs := make(chan error, 3)
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
		errs <- wrap("webhook server", srv.Start(ctx))
	}()
	probes := http.NewServeMux()
	probes.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	probes.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}))
	go func() { errs <- wrap("health probes", serve(ctx, o.probeAddr, probes)) }()
	if o.metricsAddr != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
		if o.pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		}
		go func() { errs <- wrap("metrics", serve(ctx, o.metricsAddr, mux)) }()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-errs:
		return err
	}
}

// clusterConfig returns the connection for the usage caches and settings publishing, or nil when
// there is no cluster to connect to: the static policy needs none, and usage falls back with a warning.
func clusterConfig(o *options, log *slog.Logger) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", o.kubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		log.Warn("no cluster connection (not in a cluster and no --kubeconfig); the usage policy will fall back to raw allocatable", "err", err)
		return nil, nil
	}
	cfg.UserAgent = "overcommit-webhook/" + version.Version
	return cfg, nil
}

func serve(ctx context.Context, addr string, h http.Handler) error {
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
