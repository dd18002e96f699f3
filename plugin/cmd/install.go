package cmd

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/version"
)

// InstallOptions are the options of `kubectl overcommit install`.
type InstallOptions struct {
	genericiooptions.IOStreams
	factory ClientFactory
	overlay string
	mode    string
	image   string
}

// NewCmdInstall returns `kubectl overcommit install`.
func NewCmdInstall(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &InstallOptions{IOStreams: streams, factory: f}
	cmd := &cobra.Command{
		Use:   "install [--mode policy|webhook] [--overlay self-signed|cert-manager] [--image IMAGE]",
		Short: "Print the manifests that install overcommit, for kubectl apply",
		Long: `Print the manifests that install overcommit: its namespace, the settings ConfigMap
overcommit-settings, the webhook's ServiceAccount and least-privilege RBAC, a NetworkPolicy, a
two-replica Deployment, its Service, the MutatingWebhookConfiguration, the node policy of the
mode, and ValidatingAdmissionPolicies that guard the settings, keep the node records from being
forged and (self-signed) let the webhook change only its caBundle.
They are the kustomize overlays and components of the project's deploy/ directory, built into this
plugin and rendered exactly as "kubectl kustomize" renders them, so no checkout or kustomize is
needed. Nothing is sent to the cluster: pipe the output to "kubectl apply -f -".

Modes (where the node policy runs):
  policy   inside kube-apiserver, as a MutatingAdmissionPolicy (Kubernetes 1.36 and later):
           nothing on a node's status path leaves the apiserver, so a webhook outage can no
           longer revert allocatable under running pods
  webhook  in the overcommit webhook, which the apiserver calls for every status write of an
           opted-in node; for clusters before 1.36
Without --mode, policy is chosen when the cluster of the kubeconfig serves
admissionregistration.k8s.io/v1 mutatingadmissionpolicies, else webhook; without a reachable
cluster, --mode is required. The webhook is installed in both modes: it injects sidecars.

Overlays (where the webhook's serving certificate comes from):
  self-signed   (default) the webhook creates its own CA and serving certificate in a Secret,
                injects the CA into its MutatingWebhookConfiguration and rotates both
  cert-manager  cert-manager issues the certificate and injects the CA (needs cert-manager)

Without --image, a release of the plugin installs the webhook image it was released with, by
digest.`,
		Example: `  # Install, in the mode the current cluster supports
  kubectl overcommit install | kubectl apply -f -

  # On a cluster before Kubernetes 1.36, with cert-manager, from your own registry
  kubectl overcommit install --mode webhook --overlay cert-manager --image registry.example/overcommit-webhook:v1.2.3 | kubectl apply -f -

  # Review first, without a cluster at hand
  kubectl overcommit install --mode policy > overcommit.yaml`,
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.mode, "mode", "", "Where the node policy runs: "+strings.Join(deploy.Modes(), " or ")+"; default: policy if the cluster serves MutatingAdmissionPolicy, else webhook")
	cmd.Flags().StringVar(&o.overlay, "overlay", deploy.DefaultOverlay, "Which install: "+strings.Join(deploy.Overlays(), " or "))
	cmd.Flags().StringVar(&o.image, "image", "", "Webhook image (repository[:tag][@digest]); default: the manifests' image, or this release's")
	_ = cmd.RegisterFlagCompletionFunc("mode", fixedCompletion(deploy.Modes()...))
	_ = cmd.RegisterFlagCompletionFunc("overlay", fixedCompletion(deploy.Overlays()...))
	return cmd
}

// releaseTag matches the versions release builds carry; development builds (a commit hash) keep
// the manifests' image.
var releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

// Complete picks the image of this release when none is given: by digest when the release
// recorded one, so what runs is exactly what was built and tested, whatever the tag points at later.
func (o *InstallOptions) Complete(_ *cobra.Command, _ []string) error {
	o.image = releaseImage(o.image, version.Version, version.ImageDigest)
	return nil
}

func releaseImage(image, release, digest string) string {
	if image != "" || !releaseTag.MatchString(release) {
		return image
	}
	image = deploy.Image + ":" + release
	if digest != "" {
		image += "@" + digest
	}
	return image
}

// Validate checks the overlay and the mode; the image is checked when rendering.
func (o *InstallOptions) Validate() error {
	if !slices.Contains(deploy.Overlays(), o.overlay) {
		return invalidFlag("--overlay", o.overlay, fmt.Errorf("must be %s", strings.Join(deploy.Overlays(), " or ")))
	}
	if o.mode != "" && !slices.Contains(deploy.Modes(), o.mode) {
		return invalidFlag("--mode", o.mode, fmt.Errorf("must be %s", strings.Join(deploy.Modes(), " or ")))
	}
	return nil
}

// Run picks the mode when none is given, then renders and prints the manifests.
func (o *InstallOptions) Run(context.Context) error {
	mode := o.mode
	if mode == "" {
		var err error
		if mode, err = o.defaultMode(); err != nil {
			return err
		}
	}
	out, err := deploy.Render(o.overlay, mode, o.image)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(out)
	return err
}

// defaultMode is policy when the cluster serves MutatingAdmissionPolicy, else webhook. It says on
// stderr what it chose, since the output is usually piped to kubectl apply.
func (o *InstallOptions) defaultMode() (string, error) {
	ask := func(err error) error {
		return fmt.Errorf("cannot tell which mode the cluster supports (%w); pass --mode %s (Kubernetes 1.36 and later) or --mode %s",
			err, deploy.ModePolicy, deploy.ModeWebhook)
	}
	c, err := o.factory.Clients()
	if err != nil {
		return "", ask(err)
	}
	serves, err := kube.ServesMutatingAdmissionPolicy(c.Kube)
	if err != nil {
		return "", ask(err)
	}
	if serves {
		fmt.Fprintf(o.ErrOut, "Installing in %s mode: the cluster serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (--mode %s for the node webhook).\n", deploy.ModePolicy, deploy.ModeWebhook)
		return deploy.ModePolicy, nil
	}
	fmt.Fprintf(o.ErrOut, "Installing in %s mode: the cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36 and later).\n", deploy.ModeWebhook)
	return deploy.ModeWebhook, nil
}
