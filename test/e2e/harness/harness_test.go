package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBinDirDefault: without -bin-dir, the binaries are looked up in bin/ of the module, from
// any package directory of it.
func TestBinDirDefault(t *testing.T) {
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(bin) != "bin" || !filepath.IsAbs(bin) {
		t.Fatalf("BinDir() = %s, want an absolute .../bin", bin)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "go.mod")); err != nil {
		t.Fatalf("BinDir() = %s, not next to the module's go.mod: %v", bin, err)
	}
}
