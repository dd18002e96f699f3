package cmd

import (
	"strings"
	"testing"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/version"
)

func TestInstall(t *testing.T) {
	for _, overlay := range deploy.Overlays() {
		t.Run(overlay, func(t *testing.T) {
			out, _, err := run(t, fixture(testcluster.Options{}), "install", "--overlay", overlay)
			if err != nil {
				t.Fatal(err)
			}
			want, err := deploy.Render(overlay, deploy.ModeWebhook, "")
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Error("install printed something else than the rendered overlay")
			}
		})
	}
	out, _, err := run(t, fixture(testcluster.Options{}), "install")
	if err != nil || !strings.Contains(out, "--self-signed-secret=") {
		t.Errorf("the default install is not self-signed: %v", err)
	}
	out, _, err = run(t, fixture(testcluster.Options{}), "install", "--image", "registry.example/ow:v9")
	if err != nil || !strings.Contains(out, "image: registry.example/ow:v9\n") {
		t.Errorf("--image not applied: %v", err)
	}
	if _, _, err := run(t, fixture(testcluster.Options{}), "install", "--overlay", "helm"); err == nil || !strings.Contains(err.Error(), "self-signed") {
		t.Errorf("unknown overlay: %v", err)
	}
	if _, _, err := run(t, fixture(testcluster.Options{}), "install", "--image", "bad image"); err == nil {
		t.Error("a bad image was accepted")
	}
}

func TestInstallReleaseImage(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v1.4.0"
	out, _, err := run(t, fixture(testcluster.Options{}), "install")
	if err != nil || !strings.Contains(out, "image: "+deploy.Image+":v1.4.0\n") {
		t.Errorf("a release does not install its own image: %v", err)
	}
	version.Version = "0123abc-dirty"
	out, _, err = run(t, fixture(testcluster.Options{}), "install")
	if err != nil || strings.Contains(out, "0123abc") {
		t.Errorf("a development build pinned its commit as the image tag: %v", err)
	}
}
