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
}
