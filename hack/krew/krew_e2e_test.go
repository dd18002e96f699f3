//go:build e2e

package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	distDir  = flag.String("krew-dist", "", "dist/ as `make krew` leaves it; without it the krew tests are skipped (`make test-krew` sets it)")
	toolsDir = flag.String("bin-dir", "../../bin", "directory with kubectl, krew and validate-krew-manifest (make tools)")
)

// pathWithKubectl returns a PATH on which `kubectl` and `kubectl krew` are the tools' builds.
func pathWithKubectl(t *testing.T) string {
	t.Helper()
	tools, err := filepath.Abs(*toolsDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for link, target := range map[string]string{"kubectl": "kubectl", "kubectl-krew": "krew"} {
		if err := os.Symlink(filepath.Join(tools, target), filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

func command(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (%s)\n%s", filepath.Base(name), strings.Join(args, " "), time.Since(begin).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return out.String()
}

// TestKrewManifest checks the release manifest with krew's own validator, then has the
// validator install every platform's archive (served from dist/ on loopback in place of the
// release URLs), which also checks that each archive carries LICENSE and the binary krew links.
func TestKrewManifest(t *testing.T) {
	if *distDir == "" {
		t.Skip("no -krew-dist: run `make test-krew`")
	}
	validate := filepath.Join(*toolsDir, "validate-krew-manifest")
	manifest := filepath.Join(*distDir, "overcommit.yaml")
	command(t, nil, validate, "-manifest", manifest, "-skip-install")

	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(*distDir)))
	defer srv.Close()
	uri := regexp.MustCompile(`(?m)^(\s*uri: ).*/(kubectl-overcommit_[a-z0-9]+_[a-z0-9]+\.tar\.gz)$`)
	n := len(uri.FindAll(data, -1))
	if n == 0 {
		t.Fatalf("no platform URIs in %s", manifest)
	}
	// The file name must stay overcommit.yaml: krew requires it to match the plugin's name.
	local := filepath.Join(t.TempDir(), "overcommit.yaml")
	if err := os.WriteFile(local, uri.ReplaceAll(data, []byte("${1}"+srv.URL+"/${2}")), 0o600); err != nil {
		t.Fatal(err)
	}
	out := command(t, []string{"PATH=" + pathWithKubectl(t)}, validate, "-manifest", local)
	if !strings.Contains(out, fmt.Sprintf("all %d spec.platforms installed fine", n)) {
		t.Errorf("the validator did not install all %d platforms", n)
	}
}

// TestKrewManifestAllPlatforms renders the manifest for every platform a release ships and has
// krew's validator check it. The archives hold small stand-in files instead of cross-compiled
// plugins: this checks the manifest's shape (selectors, bin names, files per platform), while
// TestKrewManifest installs real archives; `make krew` builds all six.
func TestKrewManifestAllPlatforms(t *testing.T) {
	if *distDir == "" {
		t.Skip("no -krew-dist: run `make test-krew`")
	}
	bins := t.TempDir()
	platforms := strings.Split(DefaultPlatforms, ",")
	for _, p := range platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		name := "kubectl-overcommit"
		if goos == "windows" {
			name += ".exe"
		}
		path := filepath.Join(bins, goos+"_"+goarch, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("stand-in for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	manifest, ps, err := Run(Config{Version: "v1.2.3", BaseURL: "https://example.com/v1.2.3", BinDir: bins,
		Template: filepath.Join("..", "..", "krew", "overcommit.yaml"), License: filepath.Join("..", "..", "LICENSE"),
		Completion: filepath.Join("..", "..", "plugin", "kubectl_complete-overcommit"), OutDir: t.TempDir(), Platforms: platforms})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 6 {
		t.Fatalf("%d platforms rendered, want 6", len(ps))
	}
	command(t, nil, filepath.Join(*toolsDir, "validate-krew-manifest"), "-manifest", manifest, "-skip-install")
}

// TestKrewInstall installs the plugin the way the README says, with krew from the manifest and
// the local archive into a fresh KREW_ROOT, and runs it through kubectl.
func TestKrewInstall(t *testing.T) {
	if *distDir == "" {
		t.Skip("no -krew-dist: run `make test-krew`")
	}
	root := t.TempDir()
	path := pathWithKubectl(t)
	archive := filepath.Join(*distDir, "kubectl-overcommit_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz")
	command(t, []string{"PATH=" + path, "KREW_ROOT=" + root}, "kubectl", "krew", "install",
		"--manifest="+filepath.Join(*distDir, "overcommit.yaml"), "--archive="+archive)

	path = filepath.Join(root, "bin") + string(os.PathListSeparator) + path
	list := command(t, []string{"PATH=" + path}, "kubectl", "plugin", "list", "--name-only=false")
	if first := regexp.MustCompile(`(?m)^\S*kubectl-overcommit$`).FindString(list); first != filepath.Join(root, "bin", "kubectl-overcommit") {
		t.Fatalf("kubectl finds kubectl-overcommit at %q, not krew's", first)
	}
	out := command(t, []string{"PATH=" + path}, "kubectl", "overcommit", "version")
	// The binary make krew built for this machine says the same.
	built := command(t, nil, filepath.Join(*distDir, "bin", runtime.GOOS+"_"+runtime.GOARCH, "kubectl-overcommit"), "version")
	if !strings.HasPrefix(out, "kubectl-overcommit ") || out != built {
		t.Errorf("kubectl overcommit version printed %q, want %q", out, built)
	}

	// Shell completion, set up exactly as the manifest's caveats say.
	caveat := regexp.MustCompile(`(?m)^\s*(ln -sf .*kubectl_complete-overcommit.*)$`).FindStringSubmatch(readFile(t, filepath.Join(*distDir, "overcommit.yaml")))
	if caveat == nil {
		t.Fatal("the manifest's caveats do not say how to link kubectl_complete-overcommit")
	}
	command(t, []string{"PATH=" + path, "KREW_ROOT=" + root}, "sh", "-c", caveat[1])
	complete := command(t, []string{"PATH=" + path}, "kubectl", "__complete", "overcommit", "")
	for _, sub := range []string{"enable", "disable", "preview", "savings"} {
		if !regexp.MustCompile(`(?m)^` + sub + `\b`).MatchString(complete) {
			t.Errorf("kubectl __complete overcommit does not offer %q:\n%s", sub, complete)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
