// Package deploy holds overcommit's install manifests (a kustomize base, overlays for the
// certificate source, and components for the node-policy mode) and renders them with kustomize's
// own library, so `kubectl overcommit install` prints exactly what a kustomization of
// deploy/overlays/<name> with the component deploy/modes/<mode> applies, without kustomize or a
// checkout.
//
// The manifests are embedded as they are in the repository and rendered when asked: there is no
// generated copy that could go stale.
package deploy

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Overlays, each a directory under overlays/.
const (
	// OverlaySelfSigned is the default: the webhook provisions and rotates its own certificates.
	OverlaySelfSigned = "self-signed"
	// OverlayCertManager has cert-manager issue the serving certificate and inject the CA.
	OverlayCertManager = "cert-manager"
	// DefaultOverlay is what `kubectl overcommit install` renders without --overlay.
	DefaultOverlay = OverlaySelfSigned
)

// Node-policy modes, each a kustomize Component under modes/, applied over an overlay.
const (
	// ModePolicy runs the node policy inside kube-apiserver, as a MutatingAdmissionPolicy
	// (admissionregistration.k8s.io/v1, Kubernetes 1.36 and later) with the settings ConfigMap as
	// its params.
	ModePolicy = "policy"
	// ModeWebhook runs the node policy in overcommit-webhook, registered as the node webhook of
	// the MutatingWebhookConfiguration; for clusters without MutatingAdmissionPolicy.
	ModeWebhook = "webhook"
)

// Image is the webhook's image repository in the manifests; base/kustomization.yaml pins its tag.
const Image = "ghcr.io/overcommit-dev/overcommit-webhook"

//go:embed base overlays modes
var manifests embed.FS

// Overlays lists the overlays, sorted.
func Overlays() []string { return dirs("overlays") }

// Modes lists the node-policy modes, sorted.
func Modes() []string { return dirs("modes") }

// dirs lists the embedded directories under dir, sorted.
func dirs(dir string) []string {
	entries, err := manifests.ReadDir(dir)
	if err != nil {
		return nil // cannot happen: the directory is embedded
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Render builds an overlay (or "base") with a node-policy mode (ModePolicy or ModeWebhook) and
// returns the manifests as a multi-document YAML stream, in the order kubectl applies them safely
// (Namespace first, webhook configuration last). A non-empty image ("repo[:tag][@digest]")
// replaces the webhook's image, the way `kustomize edit set image` would.
func Render(overlay, mode, image string) ([]byte, error) {
	dir := "overlays/" + overlay
	if overlay == "base" {
		dir = "base"
	} else if !slices.Contains(Overlays(), overlay) {
		return nil, fmt.Errorf("unknown overlay %q (have %s)", overlay, strings.Join(Overlays(), ", "))
	}
	if !slices.Contains(Modes(), mode) {
		return nil, fmt.Errorf("unknown mode %q (have %s)", mode, strings.Join(Modes(), ", "))
	}
	mem, err := inMemory()
	if err != nil {
		return nil, err
	}
	k, err := install(dir, mode, image)
	if err != nil {
		return nil, err
	}
	// A kustomization on top of the overlay, as a user would write one.
	root := "/deploy/.install"
	if err := mem.WriteFile(root+"/kustomization.yaml", []byte(k)); err != nil {
		return nil, fmt.Errorf("writing the install kustomization: %w", err)
	}
	opts := krusty.MakeDefaultOptions()
	// The order `kubectl kustomize` prints in: Namespace and RBAC before the Deployment, the
	// webhook configuration after it.
	opts.Reorder = krusty.ReorderOptionLegacy
	res, err := krusty.MakeKustomizer(opts).Run(mem, root)
	if err != nil {
		return nil, fmt.Errorf("rendering %s with mode %s: %w", dir, mode, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", dir, err)
	}
	return out, nil
}

// inMemory copies the embedded manifests into an in-memory file system under /deploy.
func inMemory() (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(manifests, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := manifests.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/deploy", p), data)
	})
	if err != nil {
		return nil, fmt.Errorf("loading the embedded manifests: %w", err)
	}
	return mem, nil
}

// install returns a kustomization over dir that adds the mode's component and, when image is
// set, sets the webhook's image.
func install(dir, mode, image string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../%s\ncomponents:\n- ../modes/%s\n", dir, mode)
	if image == "" {
		return b.String(), nil
	}
	name, tag, digest, err := parseImage(image)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "images:\n- name: %s\n  newName: %q\n", Image, name)
	if tag != "" {
		fmt.Fprintf(&b, "  newTag: %q\n", tag)
	}
	if digest != "" {
		fmt.Fprintf(&b, "  digest: %q\n", digest)
	}
	return b.String(), nil
}

// parseImage splits "repo[:tag][@digest]". A colon belongs to the tag only after the last slash,
// so a registry port ("registry:5000/webhook") is part of the name.
func parseImage(image string) (name, tag, digest string, err error) {
	if strings.ContainsAny(image, " \t\n\"'") {
		return "", "", "", fmt.Errorf("invalid image %q", image)
	}
	name = image
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
		if !strings.Contains(digest, ":") {
			return "", "", "", fmt.Errorf("invalid image %q: the digest must look like sha256:<hex>", image)
		}
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
		if tag == "" {
			return "", "", "", fmt.Errorf("invalid image %q: empty tag", image)
		}
	}
	if name == "" {
		return "", "", "", errors.New("invalid image: empty name")
	}
	return name, tag, digest, nil
}
