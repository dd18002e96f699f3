package cmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/version"
)

func render(t *testing.T, overlay, mode string) string {
	t.Helper()
	want, err := deploy.Render(overlay, mode, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(want)
}

func TestInstall(t *testing.T) {
	for _, overlay := range deploy.Overlays() {
		for _, mode := range deploy.Modes() {
			t.Run(overlay+"/"+mode, func(t *testing.T) {
				c := fixture(testcluster.Options{})
				out, stderr, err := run(t, c, "install", "--overlay", overlay, "--mode", mode)
				if err != nil {
					t.Fatal(err)
				}
				if out != render(t, overlay, mode) {
					t.Error("install printed something else than the rendered overlay and mode")
				}
				if stderr != "" {
					t.Errorf("stderr %q: an explicit mode needs no note", stderr)
				}
				if len(c.Kube.Actions()) != 0 {
					t.Errorf("an explicit mode asked the cluster: %v", c.Kube.Actions())
				}
			})
		}
	}
	out, _, err := run(t, fixture(testcluster.Options{}), "install", "--mode", "webhook")
	if err != nil || !strings.Contains(out, "--self-signed-secret=") {
		t.Errorf("the default install is not self-signed: %v", err)
	}
	out, _, err = run(t, fixture(testcluster.Options{}), "install", "--mode", "policy", "--image", "registry.example/ow:v9")
	if err != nil || !strings.Contains(out, "image: registry.example/ow:v9\n") {
		t.Errorf("--image not applied: %v", err)
	}
	if _, _, err := run(t, fixture(testcluster.Options{}), "install", "--overlay", "helm"); err == nil || !strings.Contains(err.Error(), "self-signed") {
		t.Errorf("unknown overlay: %v", err)
	}
	if _, _, err := run(t, fixture(testcluster.Options{}), "install", "--mode", "both"); err == nil || err.Error() != `invalid --mode "both": must be policy or webhook` {
		t.Errorf("unknown mode: %v", err)
	}
	if _, _, err := run(t, fixture(testcluster.Options{}), "install", "--mode", "webhook", "--image", "bad image"); err == nil {
		t.Error("a bad image was accepted")
	}
}

// TestInstallDefaultMode: without --mode, discovery decides; without a cluster, --mode is asked
// for.
func TestInstallDefaultMode(t *testing.T) {
	for _, tc := range []struct {
		serves     bool
		wantMode   string
		wantStderr string
	}{
		{true, deploy.ModePolicy, "Installing in policy mode: the cluster serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (--mode webhook for the node webhook).\n"},
		{false, deploy.ModeWebhook, "Installing in webhook mode: the cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36 and later).\n"},
	} {
		t.Run(tc.wantMode, func(t *testing.T) {
			c := fixture(testcluster.Options{ServesMutatingAdmissionPolicy: tc.serves})
			out, stderr, err := run(t, c, "install", "--overlay", deploy.OverlayCertManager)
			if err != nil {
				t.Fatal(err)
			}
			if out != render(t, deploy.OverlayCertManager, tc.wantMode) {
				t.Errorf("install did not print the %s mode", tc.wantMode)
			}
			if stderr != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
			if w := testcluster.Writes(c.Kube); len(w) != 0 {
				t.Errorf("install wrote to the cluster: %v", w)
			}
		})
	}

	broken := fixture(testcluster.Options{})
	broken.Kube.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("discovery down")
	})
	_, _, err := run(t, broken, "install")
	if want := "cannot tell which mode the cluster supports (cannot discover admissionregistration.k8s.io/v1: discovery down); pass --mode policy (Kubernetes 1.36 and later) or --mode webhook"; err == nil || err.Error() != want {
		t.Errorf("discovery failing: %v\nwant %s", err, want)
	}

	// No kubeconfig at all.
	var out, errOut bytes.Buffer
	root := NewCmdOvercommitWith(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		failingFactory{errors.New("cannot load the kubeconfig: invalid configuration: no configuration has been provided")})
	root.SetArgs([]string{"install"})
	err = root.ExecuteContext(context.Background())
	if want := "cannot tell which mode the cluster supports (cannot load the kubeconfig: invalid configuration: no configuration has been provided); pass --mode policy (Kubernetes 1.36 and later) or --mode webhook"; err == nil || err.Error() != want {
		t.Errorf("no cluster: %v\nwant %s", err, want)
	}
	if out.Len() != 0 {
		t.Errorf("printed manifests without a mode: %s", out.String())
	}
}

type failingFactory struct{ err error }

func (f failingFactory) Clients() (*Clients, error) { return nil, f.err }

func TestInstallReleaseImage(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v1.4.0"
	out, _, err := run(t, fixture(testcluster.Options{}), "install", "--mode", "webhook")
	if err != nil || !strings.Contains(out, "image: "+deploy.Image+":v1.4.0\n") {
		t.Errorf("a release does not install its own image: %v", err)
	}
	defer func(d string) { version.ImageDigest = d }(version.ImageDigest)
	version.ImageDigest = "sha256:" + strings.Repeat("ab", 32)
	out, _, err = run(t, fixture(testcluster.Options{}), "install", "--mode", "webhook")
	if want := "image: " + deploy.Image + ":v1.4.0@" + version.ImageDigest + "\n"; err != nil || !strings.Contains(out, want) {
		t.Errorf("a release with a recorded digest does not install its image by digest (want %q): %v", want, err)
	}
	version.Version = "0123abc-dirty"
	out, _, err = run(t, fixture(testcluster.Options{}), "install", "--mode", "policy")
	if err != nil || strings.Contains(out, "0123abc") {
		t.Errorf("a development build pinned its commit as the image tag: %v", err)
	}
}

// TestFlagErrors: every rejected flag value is worded the same way, invalid --flag "value":
// reason, whichever command or package checks it.
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"enable", "node-a", "--policy", "x"}, `invalid --policy "x": must be "static" or "usage"`},
		{[]string{"enable", "node-a", "--dry-run", "x"}, `invalid --dry-run "x": must be "none", "client" or "server"`},
		{[]string{"savings", "--sort-by", "x"}, `invalid --sort-by "x": must be one of `},
		{[]string{"savings", "-o", "x"}, `invalid -o/--output "x": must be one of table, json, yaml, csv`},
		{[]string{"sidecars", "--webhook-namespace", ""}, `invalid --webhook-namespace "": must not be empty`},
		{[]string{"inject", "-f", "-", "--from-cluster", "--webhook-namespace", ""}, `invalid --webhook-namespace "": must not be empty`},
		{[]string{"install", "--overlay", "x"}, `invalid --overlay "x": must be `},
		{[]string{"install", "--mode", "x"}, `invalid --mode "x": must be `},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := run(t, fixture(testcluster.Options{}), tc.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to begin %q", err, tc.want)
			}
		})
	}
}
