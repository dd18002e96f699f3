package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestRun packages two fake platforms with the real template and checks the archives' contents,
// that the manifest names each archive with its sha256, and that a second run is byte-identical.
func TestRun(t *testing.T) {
	bins := t.TempDir()
	for _, p := range []string{"linux_amd64/kubectl-overcommit", "windows_arm64/kubectl-overcommit.exe"} {
		path := filepath.Join(bins, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("binary for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Version: "v1.2.3-rc.1", BaseURL: "https://example.com/releases/v1.2.3-rc.1/", BinDir: bins,
		Template: filepath.Join("..", "..", "krew", "overcommit.yaml"), License: filepath.Join("..", "..", "LICENSE"),
		Completion: filepath.Join("..", "..", "plugin", "kubectl_complete-overcommit"), OutDir: t.TempDir(), Platforms: []string{"linux/amd64", "windows/arm64"}, ModTime: time.Unix(1700000000, 0),
	}
	manifest, ps, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string][]byte{}
	for _, p := range ps {
		data, err := os.ReadFile(filepath.Join(cfg.OutDir, filepath.Base(p.URI)))
		if err != nil {
			t.Fatal(err)
		}
		first[p.URI] = data
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != p.SHA256 {
			t.Errorf("%s: sha256 in the manifest is not the archive's", p.URI)
		}
		members := untar(t, data)
		want := []string{p.Bin, "LICENSE"}
		if p.OS != "windows" {
			want = append(want, "kubectl_complete-overcommit")
		}
		if diff := cmp.Diff(want, keys(members)); diff != "" {
			t.Errorf("%s members (-want +got):\n%s", p.URI, diff)
		}
		if !strings.HasPrefix(string(members[p.Bin]), "binary for "+p.OS+"_"+p.Arch) {
			t.Errorf("%s holds the wrong binary", p.URI)
		}
	}

	var m struct {
		Metadata struct{ Name string }
		Spec     struct {
			Version   string
			Platforms []struct {
				Selector struct{ MatchLabels map[string]string } `json:"selector"`
				URI      string                                  `json:"uri"`
				SHA256   string                                  `json:"sha256"`
				Bin      string                                  `json:"bin"`
				Files    []struct{ From, To string }             `json:"files"`
			}
		}
	}
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("the rendered manifest is not valid YAML: %v\n%s", err, data)
	}
	if m.Metadata.Name != "overcommit" || m.Spec.Version != cfg.Version || len(m.Spec.Platforms) != 2 {
		t.Fatalf("manifest: %+v", m)
	}
	w := m.Spec.Platforms[1]
	if w.URI != "https://example.com/releases/v1.2.3-rc.1/kubectl-overcommit_windows_arm64.tar.gz" || w.SHA256 != ps[1].SHA256 ||
		w.Bin != "kubectl-overcommit.exe" || w.Selector.MatchLabels["os"] != "windows" || w.Selector.MatchLabels["arch"] != "arm64" {
		t.Errorf("windows/arm64 platform: %+v", w)
	}

	// Reproducible.
	if _, _, err := Run(cfg); err != nil {
		t.Fatal(err)
	}
	for uri, want := range first {
		got, _ := os.ReadFile(filepath.Join(cfg.OutDir, filepath.Base(uri)))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs between two runs", uri)
		}
	}
}

func TestRunRejects(t *testing.T) {
	base := Config{Version: "v1.0.0", BaseURL: "https://x", BinDir: t.TempDir(), Template: filepath.Join("..", "..", "krew", "overcommit.yaml"),
		License: filepath.Join("..", "..", "LICENSE"), Completion: filepath.Join("..", "..", "plugin", "kubectl_complete-overcommit"), OutDir: t.TempDir(), Platforms: []string{"linux/amd64"}}
	for name, mutate := range map[string]func(*Config){
		"no v":            func(c *Config) { c.Version = "1.0.0" },
		"git describe":    func(c *Config) { c.Version = "1d95fc9-dirty" },
		"zero-prefixed":   func(c *Config) { c.Version = "v0.0.0-0939244" },
		"no base URL":     func(c *Config) { c.BaseURL = "" },
		"missing binary":  func(*Config) {},
		"bad platform":    func(c *Config) { c.Platforms = []string{"linux"} },
		"missing license": func(c *Config) { c.License = "nope" },
		"no completion":   func(c *Config) { c.Completion = "nope" },
	} {
		c := base
		mutate(&c)
		if _, _, err := Run(c); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
		order = append(order, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s has an owner: %d/%d %q", h.Name, h.Uid, h.Gid, h.Uname)
		}
	}
	out["\x00order"] = []byte(strings.Join(order, ","))
	return out
}

// keys returns the members in archive order.
func keys(m map[string][]byte) []string { return strings.Split(string(m["\x00order"]), ",") }

func TestSemver(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3":                   true,
		"v0.0.0-dev-0939244":       true,
		"v0.0.0-dev-0939244-dirty": true,
		"v1.0.0-rc.1+build.007":    true,
		"v1.0.0-0a":                true,
		"v0.0.0-0939244":           false,
		"v1.0.0-rc.01":             false,
		"v01.0.0":                  false,
		"v1.0":                     false,
	} {
		if got := semver.MatchString(v); got != want {
			t.Errorf("semver(%q) = %v, want %v", v, got, want)
		}
	}
}
