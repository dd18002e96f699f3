// Command krew packages kubectl-overcommit for krew: one kubectl-overcommit_<os>_<arch>.tar.gz per
// platform, holding the binary and LICENSE, and the plugin manifest rendered from the template
// krew/overcommit.yaml with each archive's URI and sha256. `make krew` runs it after
// cross-compiling the binaries into <bin-dir>/<os>_<arch>/.
//
// Archives are reproducible: fixed order, owners, modes and times (-mtime), so the same binaries
// always give the same sha256.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// DefaultPlatforms are the os/arch pairs a release ships.
const DefaultPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64"

// semver is what krew accepts as spec.version: v, then semantic versioning 2.0, whose numeric
// identifiers (pre-release ones too) carry no leading zero: krew refuses v0.0.0-0939244.
var semver = regexp.MustCompile(`^v` + num + `\.` + num + `\.` + num + `(-` + pre + `(\.` + pre + `)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

const (
	num = `(0|[1-9]\d*)`
	pre = `(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)`
)

// completionName is what kubectl runs to complete `kubectl overcommit ...` (kubectl 1.26+ looks
// for kubectl_complete-<plugin> on PATH).
const completionName = "kubectl_complete-overcommit"

// Platform is one archive, as the manifest template sees it.
type Platform struct {
	OS, Arch string
	// Bin is the executable's name inside the archive (.exe on Windows).
	Bin    string
	URI    string
	SHA256 string
	// Completion is the completion helper's name in the archive; empty on Windows, where kubectl
	// cannot run a shell script.
	Completion string
}

// Config is what a run needs.
type Config struct {
	Version  string
	BaseURL  string
	BinDir   string
	Template string
	License  string
	// Completion is plugin/kubectl_complete-overcommit, put into every non-Windows archive.
	Completion string
	OutDir     string
	Platforms  []string
	ModTime    time.Time
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var c Config
	var platforms string
	var mtime int64
	flag.StringVar(&c.Version, "version", "", "Release version for the manifest, e.g. v1.2.3 (required)")
	flag.StringVar(&c.BaseURL, "base-url", "", "URL the archives are downloaded from; each URI is <base-url>/<archive> (required)")
	flag.StringVar(&c.BinDir, "bin-dir", "dist/bin", "Directory with <os>_<arch>/kubectl-overcommit[.exe]")
	flag.StringVar(&c.Template, "template", "krew/overcommit.yaml", "Manifest template")
	flag.StringVar(&c.License, "license", "LICENSE", "License file put into every archive")
	flag.StringVar(&c.Completion, "completion", "plugin/kubectl_complete-overcommit", "Shell-completion helper put into every non-Windows archive")
	flag.StringVar(&c.OutDir, "out", "dist", "Where the archives and overcommit.yaml are written")
	flag.StringVar(&platforms, "platforms", DefaultPlatforms, "Comma-separated os/arch pairs to package")
	flag.Int64Var(&mtime, "mtime", 0, "Modification time of the archived files, in Unix seconds (e.g. the last commit's)")
	flag.Parse()
	c.Platforms = strings.Split(platforms, ",")
	c.ModTime = time.Unix(mtime, 0).UTC()
	manifest, ps, err := Run(c)
	if err != nil {
		log.Error("packaging for krew failed", "err", err)
		os.Exit(1)
	}
	for _, p := range ps {
		log.Info("archive", "uri", p.URI, "sha256", p.SHA256)
	}
	log.Info("manifest", "path", manifest, "version", c.Version)
}

// Run writes the archives and the manifest, and returns the manifest's path and the platforms.
func Run(c Config) (string, []Platform, error) {
	if !semver.MatchString(c.Version) {
		return "", nil, fmt.Errorf("-version %q is not a semantic version with a leading v (krew requires one)", c.Version)
	}
	if c.BaseURL == "" {
		return "", nil, errors.New("-base-url is required")
	}
	tmpl, err := template.New(filepath.Base(c.Template)).Option("missingkey=error").ParseFiles(c.Template)
	if err != nil {
		return "", nil, fmt.Errorf("reading the manifest template: %w", err)
	}
	license, err := os.ReadFile(c.License)
	if err != nil {
		return "", nil, fmt.Errorf("reading the license: %w", err)
	}
	completion, err := os.ReadFile(c.Completion)
	if err != nil {
		return "", nil, fmt.Errorf("reading the completion helper: %w", err)
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", c.OutDir, err)
	}
	var ps []Platform
	for _, pair := range c.Platforms {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(pair), "/")
		if !ok || goos == "" || goarch == "" {
			return "", nil, fmt.Errorf("platform %q: want os/arch", pair)
		}
		p := Platform{OS: goos, Arch: goarch, Bin: "kubectl-overcommit"}
		if goos == "windows" {
			p.Bin += ".exe"
		}
		bin, err := os.ReadFile(filepath.Join(c.BinDir, goos+"_"+goarch, p.Bin))
		if err != nil {
			return "", nil, fmt.Errorf("platform %s: %w", pair, err)
		}
		files := []File{{Name: p.Bin, Mode: 0o755, Data: bin}, {Name: "LICENSE", Mode: 0o644, Data: license}}
		if goos != "windows" {
			p.Completion = completionName
			files = append(files, File{Name: completionName, Mode: 0o755, Data: completion})
		}
		archive, err := Archive(c.ModTime, files...)
		if err != nil {
			return "", nil, fmt.Errorf("platform %s: %w", pair, err)
		}
		name := fmt.Sprintf("kubectl-overcommit_%s_%s.tar.gz", goos, goarch)
		if err := os.WriteFile(filepath.Join(c.OutDir, name), archive, 0o644); err != nil {
			return "", nil, fmt.Errorf("writing %s: %w", name, err)
		}
		sum := sha256.Sum256(archive)
		p.SHA256 = hex.EncodeToString(sum[:])
		p.URI = strings.TrimSuffix(c.BaseURL, "/") + "/" + name
		ps = append(ps, p)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, struct {
		Version   string
		Platforms []Platform
	}{c.Version, ps}); err != nil {
		return "", nil, fmt.Errorf("rendering the manifest: %w", err)
	}
	manifest := filepath.Join(c.OutDir, "overcommit.yaml")
	if err := os.WriteFile(manifest, out.Bytes(), 0o644); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", manifest, err)
	}
	return manifest, ps, nil
}

// File is one archive member.
type File struct {
	Name string
	Mode int64
	Data []byte
}

// Archive returns a gzipped tar of files, the same bytes for the same input.
func Archive(mtime time.Time, files ...File) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Name,
			Mode:     f.Mode,
			Size:     int64(len(f.Data)),
			ModTime:  mtime,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("archiving %s: %w", f.Name, err)
		}
		if _, err := io.Copy(tw, bytes.NewReader(f.Data)); err != nil {
			return nil, fmt.Errorf("archiving %s: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
