// Package golden compares test output with golden files under a package's testdata, rewrites them
// with -update, and fails a package's run when a golden file was read by no test: a renamed or
// deleted test case would otherwise leave its old output behind, looking like a documented case.
//
// A package with golden files calls Compare from its tests and Run from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(golden.Run(m, "testdata/*.golden")) }
package golden

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// read records the golden files the tests compared with, by cleaned path.
var (
	mu   sync.Mutex
	read = map[string]bool{}
)

// Compare compares got with the golden file at path (relative to the package's directory), or
// with -update writes got there, creating its directory.
func Compare(t testing.TB, path string, got []byte) {
	t.Helper()
	path = filepath.Clean(path)
	mu.Lock()
	read[path] = true
	mu.Unlock()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// Run runs the package's tests and then, if they passed and none was left out by -run or -skip,
// fails when a file matching pattern (a filepath.Match pattern, e.g. "testdata/*.golden") was
// compared by no test. It returns the exit code for os.Exit.
func Run(m *testing.M, pattern string) int {
	code := m.Run()
	if code != 0 || filtered() {
		return code
	}
	stale, err := Stale(pattern)
	if err != nil {
		fmt.Fprintf(os.Stderr, "golden: %v\n", err)
		return 1
	}
	if len(stale) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "FAIL: golden files that no test compared with (delete them, or restore the test that wrote them):\n")
	for _, f := range stale {
		fmt.Fprintf(os.Stderr, "\t%s\n", f)
	}
	return 1
}

// Stale returns the files matching pattern that no Compare call has read so far, sorted.
func Stale(pattern string) ([]string, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("listing golden files %q: %w", pattern, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var stale []string
	for _, f := range files {
		if !read[filepath.Clean(f)] {
			stale = append(stale, f)
		}
	}
	sort.Strings(stale)
	return stale, nil
}

// filtered says whether -run or -skip left some tests out, so that unread files prove nothing.
func filtered() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}
