package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/certs"
	"github.com/overcommit-dev/overcommit/webhook/nodes"
	"github.com/overcommit-dev/overcommit/webhook/pods"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
)

// newAdmissionServer is the TLS server of the two admission paths, /mutate-node and /mutate-pod.
func newAdmissionServer(o *options, log *slog.Logger, reg *prometheus.Registry, nodeHandler *nodes.Handler, podHandler *pods.Handler) *admission.Server {
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
	wire := admission.NewMetrics(reg)
	// One budget for both paths: the memory bound holds for the process.
	limits := admission.NewLimits()
	reg.MustRegister(limits.Collector())
	// Read at each scrape: the certificate in --cert-dir may be replaced at any time.
	reg.MustRegister(certs.NewExpiryCollector(filepath.Join(o.certDir, "tls.crt")))
	srv.Register("/mutate-node", &admission.Webhook{
		Name: "node", Handler: nodeHandler, Metrics: wire, Log: log, OnPanic: nodeHandler.OnPanic, Limits: limits,
	})
	// OnPanic nil denies: a pod admitted without the sidecar it asked for is the silent failure.
	srv.Register("/mutate-pod", &admission.Webhook{Name: "pod", Handler: podHandler, Metrics: wire, Log: log, Limits: limits})
	return srv
}

// runServers serves the admission server, the health probes, and the metrics and profiles
// when their flags ask for them, until ctx ends or one of them fails.
func runServers(ctx context.Context, o *options, log *slog.Logger, reg *prometheus.Registry, srv *admission.Server,
	tlsProvisioner *selfsigned.Provisioner, readyChecks map[string]healthz.Checker) error {
	errs := make(chan error, 4)
	serving := make(chan struct{})
	go func() { errs <- serveAdmission(ctx, srv, tlsProvisioner, serving) }()
	go func() { errs <- wrap("health probes", listen(ctx, o.probeAddr, probesMux(serving, srv, readyChecks))) }()
	if o.metricsAddr != "0" {
		go func() { errs <- wrap("metrics", listen(ctx, o.metricsAddr, metricsMux(reg))) }()
	}
	if o.pprofAddr != "" {
		log.Info("serving Go profiles", "addr", o.pprofAddr)
		go func() { errs <- wrap("pprof", listen(ctx, o.pprofAddr, pprofMux())) }()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-errs:
		return err
	}
}

// serveAdmission starts srv, once tlsProvisioner (if any) has written the certificate, and
// closes serving when it does.
func serveAdmission(ctx context.Context, srv *admission.Server, tlsProvisioner *selfsigned.Provisioner, serving chan<- struct{}) error {
	// The server reads its certificate when it starts: a self-provisioned one must be there.
	if tlsProvisioner != nil {
		select {
		case <-tlsProvisioner.Ready():
		case <-ctx.Done():
			return nil
		}
	}
	close(serving)
	return wrap("webhook server", srv.Start(ctx))
}

// probesMux serves /healthz (alive while the admission server serves) and /readyz.
func probesMux(serving <-chan struct{}, srv *admission.Server, readyChecks map[string]healthz.Checker) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{
		"ping": healthz.Ping, "webhook": livenessCheck(serving, srv.StartedChecker())}}))
	mux.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}))
	return mux
}

// metricsMux serves /metrics: the webhook's registry and controller-runtime's (client-go's).
func metricsMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
	return mux
}

// pprofMux serves Go profiles. It gets a listener of its own, on loopback unless the flag names
// a host: profiles show memory contents and a CPU profile costs CPU, so they must not be
// reachable wherever scrapers reach /metrics.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
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
