package golden

import (
	goflag "flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a testing.TB that keeps failures instead of failing the test that uses it.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Fatalf and Fatal stop the calling goroutine, as testing's do; see compare.
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.errors = append(r.errors, fmt.Sprint(args...))
	runtime.Goexit()
}

// compare runs Compare on its own goroutine, which a Fatal ends, and returns the failures.
func compare(t *testing.T, path string, got []byte) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Compare(r, path, got)
	}()
	<-done
	return r.errors
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, got string
		want            string // a substring of the one failure; empty: none
	}{
		{"equal", path, "a\nb\n", ""},
		{"differs", path, "a\nc\n", "out.golden mismatch (-want +got)"},
		{"missing", filepath.Join(dir, "none.golden"), "a\n", "run go test with -update to create it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := compare(t, tc.path, []byte(tc.got))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("failed: %q", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.want)):
				t.Errorf("failures %q, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestCompareUpdate(t *testing.T) {
	defer func(old bool) { *update = old }(*update)
	*update = true
	path := filepath.Join(t.TempDir(), "testdata", "new.golden")
	if errs := compare(t, path, []byte("fresh\n")); len(errs) > 0 {
		t.Fatalf("failed: %q", errs)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "fresh\n" {
		t.Errorf("wrote %q, want %q", got, "fresh\n")
	}
}

// TestStale: a golden file no Compare read is reported; one read (under any spelling of its
// path) is not, nor is a file the pattern does not match.
func TestStale(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"read.golden", "unread.golden", "input.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Compare(t, filepath.Join(dir, ".", "read.golden"), []byte("x\n"))
	got, err := Stale(filepath.Join(dir, "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "unread.golden")}, got); diff != "" {
		t.Errorf("stale (-want +got):\n%s", diff)
	}
	if _, err := Stale("[bad"); err == nil {
		t.Error("a malformed pattern gave no error")
	}
}

// TestFiltered: the stale check stands down only when -run or -skip leaves tests out.
func TestFiltered(t *testing.T) {
	for _, name := range []string{"test.run", "test.skip"} {
		f := goflag.Lookup(name)
		if f == nil {
			t.Fatalf("no flag %s", name)
		}
		old := f.Value.String()
		if err := f.Value.Set("TestSomething"); err != nil {
			t.Fatal(err)
		}
		if !filtered() {
			t.Errorf("-%s set: filtered() = false", name)
		}
		if err := f.Value.Set(old); err != nil {
			t.Fatal(err)
		}
	}
}
