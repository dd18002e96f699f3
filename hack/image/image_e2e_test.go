//go:build e2e

package main

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var imageDir = flag.String("image-dir", "", "the OCI layout `make image` writes; without it the test is skipped (`make test-image` sets it)")

// TestImage inspects the webhook image as `make image` built it: both architectures, each a
// static binary for its architecture as the only file (no shell), run as a numeric non-root user.
func TestImage(t *testing.T) {
	if *imageDir == "" {
		t.Skip("no -image-dir: run `make test-image`")
	}
	got := inspectLayout(t, *imageDir)
	want := map[string][]string{"linux/amd64": {"overcommit-webhook"}, "linux/arm64": {"overcommit-webhook"}}
	if diff := cmp.Diff(want, got.files); diff != "" {
		t.Fatalf("files per platform (-want +got):\n%s", diff)
	}
	for platform, cf := range got.configs {
		want := v1.Config{Entrypoint: []string{Entrypoint}, User: User, WorkingDir: "/", Labels: cf.Config.Labels}
		if diff := cmp.Diff(want, cf.Config); diff != "" {
			t.Errorf("%s config (-want +got):\n%s", platform, diff)
		}
		if cf.Config.Labels["org.opencontainers.image.version"] == "" {
			t.Errorf("%s: no version label", platform)
		}
		if cf.OS+"/"+cf.Architecture != platform {
			t.Errorf("%s: config says %s/%s", platform, cf.OS, cf.Architecture)
		}
		checkStatic(t, cf.Architecture, got.binaries[platform])
	}
}
