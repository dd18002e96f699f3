package cmd

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/shared/version"
)

// InstallOptions are the options of `kubectl overcommit install`.
type InstallOptions struct {
	genericiooptions.IOStreams
	overlay string
	image   string
}

// NewCmdInstall returns `kubectl overcommit install`.
func NewCmdInstall(streams genericiooptions.IOStreams) *cobra.Command {
	o := &InstallOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "install [--overlay self-signed|cert-manager] [--image IMAGE]",
		Short: "Print the manifests that install the overcommit webhook, for kubectl apply",
		Long: `Print the manifests that install the overcommit webhook: its namespace, ServiceAccount and
least-privilege RBAC, a two-replica Deployment, its Service and the MutatingWebhookConfiguration.
They are the kustomize overlays of the project's deploy/ directory, built into this plugin and
rendered exactly as "kubectl kustomize" renders them, so no checkout or kustomize is needed.
Nothing is sent to the cluster: pipe the output to "kubectl apply -f -".

Overlays:
  self-signed   (default) the webhook creates its own CA and serving certificate in a Secret,
                injects the CA into its MutatingWebhookConfiguration and rotates both
  cert-manager  cert-manager issues the certificate and injects the CA (needs cert-manager)

Without --image, a release of the plugin installs the webhook image of the same version.`,
		Example: `  # Install with self-managed certificates
  kubectl overcommit install | kubectl apply -f -

  # With cert-manager, from your own registry
  kubectl overcommit install --overlay cert-manager --image registry.example/overcommit-webhook:v1.2.3 | kubectl apply -f -

  # Review first
  kubectl overcommit install > overcommit.yaml`,
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.overlay, "overlay", deploy.DefaultOverlay, "Which install: "+strings.Join(deploy.Overlays(), " or "))
	cmd.Flags().StringVar(&o.image, "image", "", "Webhook image (repository[:tag][@digest]); default: the manifests' image, or this release's")
	_ = cmd.RegisterFlagCompletionFunc("overlay", fixedCompletion(deploy.Overlays()...))
	return cmd
}

// releaseTag matches the versions release builds carry; development builds (a commit hash) keep
// the manifests' image.
var releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

// Complete picks the image of this release when none is given.
func (o *InstallOptions) Complete(_ *cobra.Command, _ []string) error {
	if o.image == "" && releaseTag.MatchString(version.Version) {
		o.image = deploy.Image + ":" + version.Version
	}
	return nil
}

// Validate checks the overlay; the image is checked when rendering.
func (o *InstallOptions) Validate() error {
	for _, name := range deploy.Overlays() {
		if o.overlay == name {
			return nil
		}
	}
	return fmt.Errorf("--overlay %q: want %s", o.overlay, strings.Join(deploy.Overlays(), " or "))
}

// Run renders and prints the manifests.
func (o *InstallOptions) Run(context.Context) error {
	out, err := deploy.Render(o.overlay, deploy.ModeWebhook, o.image)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(out)
	return err
}
