// Command image assembles the webhook's container image without a container engine: one layer
// holding the static binary, on no base image at all (no shell, no libc, nothing to patch), run
// as uid 65532, one image per platform under a multi-arch OCI index, written as an OCI layout.
// The same binaries and -mtime give the same digest, so a release can compute the digest it will
// push before it pushes, and build the plugin to install exactly that image.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/overcommit-webhook"
	// User is numeric so the kubelet can check runAsNonRoot without an /etc/passwd.
	User = "65532:65532"
)

// Config is what a build needs.
type Config struct {
	// BinDir holds <os>_<arch>/overcommit-webhook for every platform.
	BinDir    string
	Platforms []string
	Version   string
	ModTime   time.Time
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var c Config
	var platforms, out, push, digestFile string
	var mtime int64
	flag.StringVar(&c.BinDir, "bin-dir", "dist/image/bin", "Directory with <os>_<arch>/overcommit-webhook (static builds)")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "Comma-separated os/arch pairs")
	flag.StringVar(&c.Version, "version", "", "Version recorded in the image's labels (required)")
	flag.Int64Var(&mtime, "mtime", 0, "Creation and file time, in Unix seconds (e.g. the last commit's), for reproducible digests")
	flag.StringVar(&out, "out", "dist/image", "OCI layout directory to write (replaced)")
	flag.StringVar(&digestFile, "digest-file", "", "Also write the index's digest (sha256:...) to this file")
	flag.StringVar(&push, "push", "", "Also push the index to this reference (repository:tag) and print repository@digest")
	flag.Parse()
	c.Platforms = strings.Split(platforms, ",")
	c.ModTime = time.Unix(mtime, 0).UTC()
	if err := run(c, out, push, digestFile); err != nil {
		log.Error("building the image failed", "err", err)
		os.Exit(1)
	}
}

func run(c Config, out, push, digestFile string) error {
	idx, err := Build(c)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("digest of the index: %w", err)
	}
	if err := WriteLayout(out, idx, c.Version); err != nil {
		return err
	}
	fmt.Printf("%s\t%s\n", out, digest)
	if digestFile != "" {
		if err := os.WriteFile(digestFile, []byte(digest.String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing the digest: %w", err)
		}
	}
	if push == "" {
		return nil
	}
	ref, err := name.NewTag(push)
	if err != nil {
		return fmt.Errorf("-push %q: %w", push, err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	fmt.Printf("%s@%s\n", ref.Context().Name(), digest)
	return nil
}

// Build returns the multi-arch index of c's platforms.
func Build(c Config) (v1.ImageIndex, error) {
	if c.Version == "" {
		return nil, errors.New("-version is required")
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pair := range c.Platforms {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(pair), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("platform %q: want os/arch", pair)
		}
		bin, err := os.ReadFile(filepath.Join(c.BinDir, goos+"_"+goarch, filepath.Base(Entrypoint)))
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", pair, err)
		}
		img, err := platformImage(c, goos, goarch, bin)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", pair, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: goarch}}})
	}
	return mutate.Annotations(idx, labels(c.Version)).(v1.ImageIndex), nil
}

func labels(version string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   "https://github.com/overcommit-dev/overcommit",
		"org.opencontainers.image.title":    "overcommit-webhook",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.version":  version,
	}
}

func platformImage(c Config, goos, goarch string, bin []byte) (v1.Image, error) {
	data, err := tarOf(c.ModTime, strings.TrimPrefix(Entrypoint, "/"), bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: c.ModTime}, CreatedBy: "hack/image: " + Entrypoint}})
	if err != nil {
		return nil, fmt.Errorf("appending the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = goos, goarch
	cf.Created = v1.Time{Time: c.ModTime}
	cf.Config = v1.Config{Entrypoint: []string{Entrypoint}, User: User, WorkingDir: "/", Labels: labels(c.Version)}
	return mutate.ConfigFile(img, cf)
}

// tarOf is a layer holding one executable, owned by root and not writable by the image's user.
func tarOf(mtime time.Time, path string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o555, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("archiving %s: %w", path, err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("archiving %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout replaces dir with an OCI layout holding idx, named by version.
func WriteLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version})); err != nil {
		return fmt.Errorf("writing the index into %s: %w", dir, err)
	}
	return nil
}
