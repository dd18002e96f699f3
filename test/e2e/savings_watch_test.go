//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// syncBuffer is a bytes.Buffer that the command's output copier writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// watching is `kubectl overcommit savings --watch ...` running through the real kubectl, its
// output a pipe.
type watching struct {
	cmd         *exec.Cmd
	out, errOut syncBuffer
	done        chan error
}

func startWatch(t *testing.T, args ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd, err := harness.KubectlCmd(ctx, env, append([]string{"overcommit", "savings"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	w := &watching{cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = &w.out, &w.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.done
	})
	return w
}

// stop sends sig and returns the exit error (nil: exit code 0).
func (w *watching) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := <-w.done
	w.done <- err // for the cleanup
	t.Logf("kubectl overcommit savings --watch, stopped with %v: %v\nstdout:\n%s\nstderr:\n%s", sig, err, w.out.String(), w.errOut.String())
	return err
}

// frames are the complete frames written so far, each from its header line ("Every ...") to
// the report's last line. Frames are a blank line apart, and each is one write, smaller than
// a pipe's atomic write, so the last one is either whole or not there.
func (w *watching) frames() []string {
	out := w.out.String()
	if out == "" {
		return nil
	}
	frames := strings.Split(out, "\n\nEvery ")
	for i := 1; i < len(frames); i++ {
		frames[i] = "Every " + frames[i]
	}
	if last := frames[len(frames)-1]; !strings.Contains(last, "Extra schedulable capacity:") || !strings.HasSuffix(last, "\n") {
		frames = frames[:len(frames)-1]
	}
	return frames
}

// TestPluginSavingsWatch: through the real kubectl, with its output a pipe, savings --watch
// appends a frame when the report changes (a node opted in between two reads), prints no escape
// codes, and exits 0 on SIGINT; -o json writes one document per line and exits 0 on SIGTERM.
func TestPluginSavingsWatch(t *testing.T) {
	t.Parallel()
	const group = "savings-watch"
	pluginNode(t, "plugin-savwatch-a", "4", "8Gi", group)
	pluginNode(t, "plugin-savwatch-b", "4", "8Gi", group)
	waitSettingsPublished(t)
	selector := pluginLabel + "=" + group

	w := startWatch(t, "-l", selector, "--watch", "--interval", "1s")
	header := regexp.MustCompile(`^Every 1s: kubectl overcommit savings --selector=` + regexp.QuoteMeta(selector) + `   \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n`)
	rowB := regexp.MustCompile(`(?m)^plugin-savwatch-b +(\S+) +\d+ +4 +(\S+) `)
	policyAndAlloc := func(frame string) string {
		m := rowB.FindStringSubmatch(frame)
		if m == nil {
			return ""
		}
		return m[1] + " " + m[2]
	}
	harness.Eventually(t, time.Minute, "the first frame", func() error {
		if len(w.frames()) == 0 {
			return fmt.Errorf("no frame yet; stdout %q, stderr %q", w.out.String(), w.errOut.String())
		}
		return nil
	})
	if got := policyAndAlloc(w.frames()[0]); got != "- 4" {
		t.Errorf("first frame: node b's POLICY and CPU ALLOC %q, want %q:\n%s", got, "- 4", w.frames()[0])
	}

	mustOvercommit(t, "enable", "plugin-savwatch-b", "--cpu-ratio", "2")
	harness.Eventually(t, time.Minute, "a frame with node b opted in", func() error {
		frames := w.frames()
		if got := policyAndAlloc(frames[len(frames)-1]); got != "static 8" {
			return fmt.Errorf("%d frames, node b's POLICY and CPU ALLOC in the last %q, want %q", len(frames), got, "static 8")
		}
		return nil
	})
	if err := w.stop(t, syscall.SIGINT); err != nil {
		t.Errorf("after SIGINT: %v, want exit code 0; stderr:\n%s", err, w.errOut.String())
	}
	out := w.out.String()
	for i, f := range w.frames() {
		if !header.MatchString(f) {
			t.Errorf("frame %d does not start with the header line:\n%s", i, f)
		}
	}
	if strings.Contains(out+w.errOut.String(), "\x1b") {
		t.Errorf("escape codes in the output of a watch into a pipe:\n%q", out)
	}

	// -o json: one compact document per line, each a whole report; SIGTERM also exits 0.
	j := startWatch(t, "-l", selector, "-w", "-o", "json", "--interval", "1s")
	harness.Eventually(t, time.Minute, "the first JSON document", func() error {
		if !strings.Contains(j.out.String(), "\n") {
			return errors.New("no line yet")
		}
		return nil
	})
	if err := j.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("after SIGTERM: %v, want exit code 0", err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(j.out.String(), "\n"), "\n") {
		var r savings.SavingsReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a line of -w -o json is not a report: %v\n%s", err, line)
		}
		if r.Total.Nodes != 2 || r.Total.EnabledNodes != 1 {
			t.Errorf("report of %d nodes, %d enabled; want 2, 1", r.Total.Nodes, r.Total.EnabledNodes)
		}
	}
}
