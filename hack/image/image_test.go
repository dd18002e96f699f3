package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestBuildReproducible builds twice from the same stand-in files (this test checks the image's
// assembly; image_e2e_test.go inspects the real webhook binaries) and gets the same digest.
func TestBuildReproducible(t *testing.T) {
	bins := t.TempDir()
	for _, p := range []string{"linux_amd64", "linux_arm64"} {
		if err := os.MkdirAll(filepath.Join(bins, p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bins, p, "overcommit-webhook"), []byte("stand-in for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := Config{BinDir: bins, Platforms: []string{"linux/amd64", "linux/arm64"}, Version: "v1.2.3", ModTime: time.Unix(1700000000, 0)}
	digests := map[v1.Hash]bool{}
	for range 2 {
		idx, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[d] = true
		dir := filepath.Join(t.TempDir(), "layout")
		if err := WriteLayout(dir, idx, c.Version); err != nil {
			t.Fatal(err)
		}
		got := inspectLayout(t, dir)
		want := map[string][]string{"linux/amd64": {"overcommit-webhook"}, "linux/arm64": {"overcommit-webhook"}}
		if diff := cmp.Diff(want, got.files); diff != "" {
			t.Errorf("layer contents (-want +got):\n%s", diff)
		}
	}
	if len(digests) != 1 {
		t.Errorf("two builds of the same input gave %d digests", len(digests))
	}
}

func TestBuildRejects(t *testing.T) {
	for name, c := range map[string]Config{
		"no version":     {BinDir: t.TempDir(), Platforms: []string{"linux/amd64"}},
		"bad platform":   {BinDir: t.TempDir(), Platforms: []string{"linux"}, Version: "v1"},
		"missing binary": {BinDir: t.TempDir(), Platforms: []string{"linux/amd64"}, Version: "v1"},
	} {
		if _, err := Build(c); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
}

// layoutContents is what the tests check of a written layout, per "os/arch".
type layoutContents struct {
	files map[string][]string
	// binaries are the entrypoints' bytes.
	binaries map[string][]byte
	configs  map[string]*v1.ConfigFile
}

// inspectLayout reads the one index of an OCI layout: per platform, the config and every file
// in every layer.
func inspectLayout(t *testing.T, dir string) layoutContents {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 {
		t.Fatalf("layout holds %d entries, want 1 index", len(tm.Manifests))
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := layoutContents{files: map[string][]string{}, binaries: map[string][]byte{}, configs: map[string]*v1.ConfigFile{}}
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		key := m.Platform.OS + "/" + m.Platform.Architecture
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		got.configs[key] = cf
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		got.files[key] = []string{}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got.files[key] = append(got.files[key], h.Name)
				if "/"+h.Name == Entrypoint {
					data, err := io.ReadAll(tr)
					if err != nil {
						t.Fatal(err)
					}
					got.binaries[key] = data
				}
			}
			rc.Close()
		}
		sort.Strings(got.files[key])
	}
	return got
}

// elfMachine maps GOARCH to the ELF machine a binary for it carries.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStatic fails unless data is a static ELF executable for arch (no interpreter, no dynamic
// section: nothing in the image it could load).
func checkStatic(t *testing.T, arch string, data []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not an ELF binary: %v", arch, err)
	}
	if f.Machine != elfMachine[arch] {
		t.Errorf("%s: binary is for %s", arch, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: binary is dynamically linked (%s)", arch, p.Type)
		}
	}
}
