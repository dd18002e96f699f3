// Package cmd wires kubectl-overcommit's cobra commands. Each command follows kubectl's pattern:
// an Options struct, Complete (flags and args into values, clients), Validate (no API calls),
// Run. The work itself lives in plugin/kube, plugin/preview, plugin/optin, plugin/savings and
// plugin/sidecars.
package cmd

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/version"
)

// Clients are the API clients a command uses.
type Clients struct {
	Kube    kubernetes.Interface
	Metrics metricsclient.Interface
	// REST is the connection the clients were made from, for what needs more than a clientset
	// (check's port-forward to the webhook); nil with fake clientsets.
	REST *rest.Config
}

// ClientFactory makes the clients once the flags are parsed; tests pass fake clientsets.
type ClientFactory interface {
	Clients() (*Clients, error)
}

// NamespaceSource is a ClientFactory that knows the namespace given with -n/--namespace;
// explicit is false when none was given (the plugin reads every namespace then).
type NamespaceSource interface {
	Namespace() (namespace string, explicit bool)
}

// flagFactory builds clients from kubectl's connection flags.
type flagFactory struct {
	flags  *genericclioptions.ConfigFlags
	errOut io.Writer

	once    sync.Once
	clients *Clients
	err     error
}

func (f *flagFactory) Clients() (*Clients, error) {
	f.once.Do(func() { f.clients, f.err = f.build() })
	return f.clients, f.err
}

// Namespace is -n/--namespace when given on the command line. The kubeconfig context's
// namespace is not read: the node reports count every namespace unless asked otherwise.
func (f *flagFactory) Namespace() (string, bool) {
	return explicitNamespace(f.flags)
}

func explicitNamespace(flags *genericclioptions.ConfigFlags) (string, bool) {
	if flags.Namespace == nil || *flags.Namespace == "" {
		return "", false
	}
	return *flags.Namespace, true
}

func (f *flagFactory) build() (*Clients, error) {
	cfg, err := f.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load the kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	// No client-side rate limit: client-go's default of 5 requests per second would take half an
	// hour to opt in 5,000 nodes (two writes each). optin.Workers bounds the requests in flight,
	// and the apiserver's priority and fairness protects it from a busy client.
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS = -1
	}
	rest.AddUserAgent(cfg, "kubectl-overcommit/"+version.Version)
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = kube.WarningHandler{Print: rest.NewWarningWriter(f.errOut,
		rest.WarningWriterOptions{Deduplicate: true, Color: printers.AllowsColorOutput(f.errOut)})}
	metricsCfg := rest.CopyConfig(cfg)
	// Protobuf makes listing 150,000 pods several times cheaper than JSON, on both ends.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create a client: %w", err)
	}
	m, err := metricsclient.NewForConfig(metricsCfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create a metrics client: %w", err)
	}
	return &Clients{Kube: k, Metrics: m, REST: metricsCfg}, nil
}

// NewCmdOvercommit returns the kubectl-overcommit command, using kubectl's connection flags.
func NewCmdOvercommit(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := NewCmdOvercommitWith(streams, &flagFactory{flags: flags, errOut: streams.ErrOut})
	flags.AddFlags(root.PersistentFlags())
	return root
}

// NewCmdOvercommitWith returns the command with the given clients (tests use fake clientsets).
func NewCmdOvercommitWith(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-overcommit",
		Short: "Hand idle requested capacity back to the scheduler, node by node",
		Long: `Kubernetes schedules pods by their requests, and most pods request more than they use.
overcommit raises the allocatable cpu (and, if asked, memory) that opted-in nodes report, so the
scheduler can place more pods. The node policy does the rewriting, inside kube-apiserver as a
MutatingAdmissionPolicy (policy mode) or in the overcommit webhook (webhook mode), with the settings
of the ConfigMap overcommit-system/overcommit-settings; this plugin opts nodes in and out, previews
exactly what the node policy will store, and reports the savings.`,
		Example: `  # What would opting node worker-1 in at cpu x2 store?
  kubectl overcommit preview worker-1 --cpu-ratio 2

  # Opt it in
  kubectl overcommit enable worker-1 --cpu-ratio 2

  # Per-node savings, largest first
  kubectl overcommit savings --sort-by cpu-extra

  # Opt it out again, restoring the kubelet's allocatable at once
  kubectl overcommit disable worker-1`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl overcommit"},
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s -h' for help and examples", err, c.CommandPath())
	})
	root.AddCommand(
		NewCmdEnable(streams, f),
		NewCmdDisable(streams, f),
		NewCmdPreview(streams, f),
		NewCmdSavings(streams, f),
		NewCmdSidecars(streams, f),
		NewCmdInject(streams, f),
		NewCmdInstall(streams, f),
		NewCmdCheck(streams, f),
		NewCmdVersion(streams),
	)
	return root
}

// base is what every command's options share.
type base struct {
	genericiooptions.IOStreams
	factory ClientFactory
	clients *Clients
}

func (b *base) completeClients() error {
	c, err := b.factory.Clients()
	if err != nil {
		return err
	}
	b.clients = c
	return nil
}

// warn prints a warning the way kubectl prints the apiserver's.
func (b *base) warn(format string, args ...any) {
	printers.NewWarningPrinter(b.ErrOut, printers.WarningPrinterOptions{Color: printers.AllowsColorOutput(b.ErrOut)}).
		Print(fmt.Sprintf(format, args...))
}

// settings reads the settings ConfigMap and says once when it falls back to the defaults.
func (b *base) settings(ctx context.Context) kube.Settings {
	s := kube.ReadSettings(ctx, b.clients.Kube)
	if s.Notice != "" {
		b.warn("%s", s.Notice)
	}
	return s
}

// nodePolicy detects the node-policy mode installed and says once when it needs attention (both
// modes, none, or unknown).
func (b *base) nodePolicy(ctx context.Context) kube.NodePolicy {
	p := kube.DetectNodePolicy(ctx, b.clients.Kube)
	if p.Notice != "" {
		b.warn("%s", p.Notice)
	}
	return p
}
