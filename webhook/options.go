package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/selfsigned"
)

// options are the webhook's command-line flags, named as controller-runtime projects name them.
type options struct {
	host              string
	port              int
	certDir           string
	metricsAddr       string
	probeAddr         string
	kubeconfig        string
	webhookConfigName string
	namespace         string
	selfSignedSecret  string
	serviceName       string
	selfSigned        selfsigned.Config // hidden flags: rotation timing, shortened by e2e
	settingsConfigMap string
	metricsRefresh    time.Duration
	publishTargets    bool
	targetThreshold   policy.Ratio
	history           history.Config
	cpuStep           resource.Quantity // --usage-raise-step-cpu as typed; validate puts it into history
	memoryStep        resource.Quantity // --usage-raise-step-memory, likewise
	logLevel          slog.Level
	logFormat         string
	version           bool
	enableHTTP2       bool
	pprofAddr         string
	clientCAFile      string
	gcFloor           resource.Quantity
}

func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("overcommit-webhook", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Usage = func() { printUsage(fs) }
	// The order of these calls is the order of --help.
	o.addServingFlags(fs)
	o.addClusterFlags(fs)
	o.addSelfSignedFlags(fs)
	o.addUsageFlags(fs)
	o.addProcessFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := o.validateHistory(fs); err != nil {
		return nil, err
	}
	return o, nil
}

// printUsage prints --help.
func printUsage(fs *pflag.FlagSet) {
	fmt.Fprintf(os.Stderr, `overcommit-webhook rewrites status.allocatable of opted-in nodes (label %s)
so the scheduler can use capacity that pods request but do not use.

It serves /mutate-node over TLS for Node CREATE and nodes/status UPDATE admission reviews, answers
from in-memory caches only, and never blocks a node's status write. Its settings (default and
maximum ratios, usage margin, metrics age) are the ConfigMap --settings-configmap in --namespace,
followed as it changes: without it, opted-in nodes are left unchanged; when it is invalid, the
built-in defaults apply. In policy mode the apiserver runs the node policy itself and does not call
/mutate-node.

The usage policy (node annotation overcommit.dev/policy=usage) reclaims what pods request but do
not use, judged by a percentile of each node's usage over --usage-window, not by one sample:
allocatable falls as soon as that statistic rises, and rises only after it has stayed lower for
--usage-raise-after. Both modes use the same statistic: in policy mode, --publish-usage-targets
writes it where the apiserver reads it.

It also serves /mutate-pod for Pod CREATE: pods annotated sidecar.overcommit.dev/inject get the
sidecar templates (ConfigMaps labelled overcommit.dev/sidecar-template in --namespace) they name.

Usage:
  overcommit-webhook [flags]

Flags:
%s`, "overcommit.dev/enabled=true", fs.FlagUsages())
}

// addServingFlags adds the flags of the webhook server's address and TLS.
func (o *options) addServingFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.host, "host", "", "Address the webhook server binds to; empty means all interfaces.")
	fs.IntVar(&o.port, "port", 9443, "Port the webhook server serves TLS on.")
	fs.StringVar(&o.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"Directory holding the serving certificate tls.crt and key tls.key; changes are picked up without a restart.")
	fs.StringVar(&o.clientCAFile, "client-ca-file", "",
		"PEM file of the CAs whose client certificates the webhook server requires: when set, a client without such a certificate (anyone but an apiserver configured with an AdmissionConfiguration kubeconfig) is refused in the TLS handshake. Re-read when it changes. Empty: no client certificate is asked for.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus /metrics endpoint; \"0\" disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
}

// addClusterFlags adds the flags of the cluster connection and what the webhook reads there.
func (o *options) addClusterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "",
		"Kubeconfig for the settings ConfigMap, the sidecar templates and the usage policy's caches; empty means in-cluster config. Without a cluster there are no settings, and opted-in nodes are left unchanged.")
	fs.StringVar(&o.webhookConfigName, "webhook-config-name", names.WebhookConfigurationName,
		"MutatingWebhookConfiguration whose caBundle the webhook keeps current with --self-signed-secret.")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace(),
		"The webhook's own namespace: the settings ConfigMap and sidecar templates are read from it and its pods are never injected. Default: $POD_NAMESPACE, else overcommit-system.")
	fs.StringVar(&o.settingsConfigMap, "settings-configmap", names.SettingsConfigMap,
		"ConfigMap in --namespace holding the node policy's settings (the same the MutatingAdmissionPolicy of policy mode reads).")
}

// addSelfSignedFlags adds the flags of the self-signed certificate (--self-signed-secret).
func (o *options) addSelfSignedFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.selfSignedSecret, "self-signed-secret", "",
		"Secret in --namespace where the webhook keeps its own CA and serving certificate: created or reused at start-up, shared by all replicas, written to --cert-dir, its CA injected into --webhook-config-name, rotated before expiry. Empty: --cert-dir is filled by someone else (cert-manager, a mounted Secret).")
	fs.StringVar(&o.serviceName, "service-name", "overcommit-webhook",
		"The webhook's Service in --namespace; the self-signed serving certificate names <service>.<namespace>.svc.")
	fs.DurationVar(&o.selfSigned.CAValidity, "self-signed-ca-validity", selfsigned.DefaultCAValidity, "Validity of a self-signed CA; it is rotated at 2/3 of it.")
	fs.DurationVar(&o.selfSigned.CertValidity, "self-signed-cert-validity", selfsigned.DefaultCertValidity, "Validity of a self-signed serving certificate; it is renewed at 2/3 of it.")
	fs.DurationVar(&o.selfSigned.Interval, "self-signed-check-interval", selfsigned.DefaultInterval, "How often each replica re-reads the certificate Secret.")
	fs.DurationVar(&o.selfSigned.Propagation, "self-signed-propagation", selfsigned.DefaultPropagation, "How long each rotation step waits before the next relies on it.")
	for _, f := range []string{"self-signed-ca-validity", "self-signed-cert-validity", "self-signed-check-interval", "self-signed-propagation"} {
		_ = fs.MarkHidden(f) // the defaults are the product; tests shorten them
	}
}

// addUsageFlags adds the flags of the usage policy's caches and of policy mode's targets.
func (o *options) addUsageFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.metricsRefresh, "metrics-refresh-interval", 15*time.Second,
		"How often NodeMetrics are listed from metrics.k8s.io (one LIST for all nodes); each list adds one sample to every node's usage window.")
	o.history = history.DefaultConfig()
	fs.DurationVar(&o.history.Window, history.FlagWindow, o.history.Window,
		"How far back a node's usage samples count: the usage policy reclaims against a percentile of this window, so a peak keeps its room reserved until it is this old. Held in memory only (12 bytes a sample, at most 12 KiB a node): a restart starts every window afresh, and a peak older than the window, such as yesterday's, is not seen. 1m to 24h.")
	fs.DurationVar(&o.history.MinWindow, history.FlagMinWindow, o.history.MinWindow,
		"Until a node's window spans this long (after a start, or when its metrics come back after a gap longer than --usage-window), its percentile is not trusted: the node counts as fully used, so allocatable is held at its pods' requests and never below the kubelet's, and the warning and the applied record say warming-up. 0 to half of --usage-window.")
	fs.IntVar(&o.history.CPUPercentile, history.FlagCPUPercentile, o.history.CPUPercentile,
		"Percentile of the window's cpu usage the usage policy reclaims against, 1 to 100 (100 is the window's maximum). CPU is compressible: a burst above it is throttled, not killed.")
	fs.IntVar(&o.history.MemoryPercentile, history.FlagMemoryPercentile, o.history.MemoryPercentile,
		"Percentile of the window's memory usage the usage policy reclaims against, 1 to 100. The default is the maximum: memory is not compressible, and usage above what was handed out ends in OOM kills.")
	fs.DurationVar(&o.history.RaiseAfter, history.FlagRaiseAfter, o.history.RaiseAfter,
		"Hysteresis: a percentile above the one in use is taken at once (allocatable falls at once); a lower one only once it has stayed lower by more than the raise step for this long, and then the highest seen meanwhile (allocatable rises). Longer means fewer allocatable changes and capacity back later; 0 follows every fall larger than the step.")
	o.cpuStep = resource.MustParse("250m")
	fs.Var(quantityValue{&o.cpuStep}, history.FlagCPUStep,
		"Hysteresis: how much lower the cpu percentile must stay for --usage-raise-after before allocatable rises; a smaller fall keeps the one in use, so noise never moves allocatable up.")
	o.memoryStep = resource.MustParse("256Mi")
	fs.Var(quantityValue{&o.memoryStep}, history.FlagMemoryStep,
		"Hysteresis: how much lower the memory percentile must stay for --usage-raise-after before allocatable rises; a smaller fall keeps the one in use.")
	fs.BoolVar(&o.publishTargets, "publish-usage-targets", false,
		"Policy mode: publish each usage-policy node's target (with the statistic it came from) as the annotation "+names.UsageTargetAnnotation+
			" and every opted-in node's summed pod requests as "+names.RequestsAnnotation+
			" (the pressure guard holds allocatable at them), and confirm them every --metrics-refresh-interval in the settings ConfigMap, for the in-apiserver policy to read (deploy/modes/policy sets it).")
	o.targetThreshold = policy.MustParseRatio("0.1")
	fs.Var(&o.targetThreshold, "usage-target-threshold",
		"With --publish-usage-targets: rewrite a node's published target or requests only when a resource's value moves, up or down, by more than this fraction of the node's raw allocatable. It bounds the API writes; when allocatable may rise is the hysteresis' decision (--usage-raise-after), in both modes.")
}

// addProcessFlags adds the flags of logging, memory, profiles, HTTP/2 and --version.
func (o *options) addProcessFlags(fs *pflag.FlagSet) {
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "Log level: debug, info, warn or error.")
	fs.StringVar(&o.logFormat, "log-format", "json", "Log format: json or text.")
	o.gcFloor = resource.MustParse("32Mi")
	fs.Var(quantityValue{&o.gcFloor}, "gc-floor", "Least heap growth between garbage collections (GOGC is raised while the live heap is smaller); 0 keeps GOGC as it is. Ignored when GOGC is set.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "",
		"Address of Go profiles under /debug/pprof/, for performance work; empty (the default) serves none. A port alone (\":6060\" or \"6060\") binds to 127.0.0.1.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Serve HTTP/2 as well; off by default since the HTTP/2 Rapid Reset advisories.")
	fs.BoolVar(&o.version, "version", false, "Print the version and exit.")
}

// validate checks the values parsed, and binds a port-only --pprof-bind-address to loopback.
func (o *options) validate() error {
	if o.port <= 0 || o.port > 65535 {
		return fmt.Errorf("--port %d out of range", o.port)
	}
	if o.metricsRefresh <= 0 {
		return fmt.Errorf("--metrics-refresh-interval must be positive")
	}
	if o.targetThreshold < 0 || o.targetThreshold > policy.One {
		return fmt.Errorf("--usage-target-threshold %s must be between 0 and 1", o.targetThreshold)
	}
	if o.namespace == "" {
		return fmt.Errorf("--namespace must not be empty")
	}
	if o.settingsConfigMap == "" {
		return fmt.Errorf("--settings-configmap must not be empty")
	}
	if o.logFormat != "json" && o.logFormat != "text" {
		return fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	var err error
	if o.pprofAddr, err = loopbackIfPortOnly(o.pprofAddr); err != nil {
		return fmt.Errorf("--pprof-bind-address: %w", err)
	}
	if o.gcFloor.Sign() < 0 {
		return fmt.Errorf("--gc-floor %s must not be negative", o.gcFloor.String())
	}
	return nil
}

// validateHistory completes the usage window's configuration with the raise steps and checks it
// with history.Config.Validate, whose complaint starts with the flag it is about: it is worded
// like the other rejected flag values, invalid --flag "value as typed": reason.
func (o *options) validateHistory(fs *pflag.FlagSet) error {
	o.history.CPUStep = policy.Amount(corev1.ResourceCPU, o.cpuStep)
	o.history.MemoryStep = policy.Amount(corev1.ResourceMemory, o.memoryStep)
	err := o.history.Validate()
	if err == nil {
		return nil
	}
	msg := err.Error()
	_, reason, _ := strings.Cut(msg, ": ")
	for _, name := range []string{history.FlagWindow, history.FlagMinWindow, history.FlagCPUPercentile, history.FlagMemoryPercentile,
		history.FlagRaiseAfter, history.FlagCPUStep, history.FlagMemoryStep} {
		if strings.HasPrefix(msg, "--"+name+" ") && reason != "" {
			return fmt.Errorf("invalid --%s %q: %s", name, fs.Lookup(name).Value.String(), reason)
		}
	}
	return fmt.Errorf("invalid usage window: %w", err)
}

// loopbackIfPortOnly binds an address given as a port alone (":6060" or "6060") to 127.0.0.1;
// an address with a host, including 0.0.0.0, is kept as given.
func loopbackIfPortOnly(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// quantityValue is a flag holding a Kubernetes quantity ("32Mi").
type quantityValue struct{ q *resource.Quantity }

func (v quantityValue) String() string {
	if v.q == nil {
		return ""
	}
	return v.q.String()
}

func (v quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a quantity such as 32Mi: %w", err)
	}
	*v.q = q
	return nil
}

func (quantityValue) Type() string { return "quantity" }

func (o *options) logger() *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.logLevel}
	if o.logFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, ho))
}

// defaultNamespace is the namespace the Downward API puts in POD_NAMESPACE, else the install's.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return names.Namespace
}

// pflagHelp is returned by parseOptions for -h/--help, which has printed the usage already.
var pflagHelp = pflag.ErrHelp
