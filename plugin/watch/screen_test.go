package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/internal/golden"
)

func TestMain(m *testing.M) { os.Exit(golden.Run(m, filepath.Join("testdata", "*.golden"))) }

// writes records each Write separately: a terminal frame must be one.
type writes []string

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, string(p))
	return len(p), nil
}

// visible shows the escape character as \e, so that the golden files can be read.
func visible(s string) string { return strings.ReplaceAll(s, "\x1b", `\e`) }

// t0 is the time of the first read in these tests.
var t0 = time.Date(2026, 12, 2, 14, 30, 0, 0, time.UTC)

// step is one read: its frame or its error, made t0 + at, on a terminal resized to width x
// height if they are not 0.
type step struct {
	at            time.Duration
	frame         Frame
	err           error
	width, height int
}

const (
	reportA = "NODE    POLICY  PODS\nnode-a  static  3\nnode-b  -       1\n"
	reportB = "NODE    POLICY  PODS\nnode-a  static  4\n"
)

func TestScreen(t *testing.T) {
	blip := errors.New("Get \"https://10.0.0.1:6443/api/v1/nodes\": dial tcp 10.0.0.1:6443: connect: connection refused")
	noMetrics := "no usage columns: metrics.k8s.io is not served (no metrics-server?)"
	for _, tc := range []struct {
		name   string
		mode   Mode
		width  int
		height int
		steps  []step
	}{
		{name: "append-changes-only", mode: Append, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
			{at: 5 * time.Second, frame: Frame{Body: []byte(reportA)}},
			{at: 10 * time.Second, frame: Frame{Body: []byte(reportB)}},
		}},
		{name: "append-read-errors", mode: Append, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
			{at: 5 * time.Second, err: blip},
			{at: 10 * time.Second, err: blip},
			{at: 15 * time.Second, frame: Frame{Body: []byte(reportA)}},
			{at: 20 * time.Second, frame: Frame{Body: []byte(reportB)}},
		}},
		{name: "append-warnings-once", mode: Append, steps: []step{
			{frame: Frame{Warnings: []string{noMetrics}, Body: []byte(reportA)}},
			{at: 5 * time.Second, frame: Frame{Warnings: []string{noMetrics}, Body: []byte(reportB)}},
			{at: 10 * time.Second, frame: Frame{Body: []byte(reportB)}},
		}},
		{name: "stream-json", mode: Stream, steps: []step{
			{frame: Frame{Body: []byte(`{"kind":"SavingsReport","total":{"pods":3}}` + "\n")}},
			{at: 5 * time.Second, frame: Frame{Body: []byte(`{"kind":"SavingsReport","total":{"pods":3}}` + "\n")}},
			{at: 10 * time.Second, err: blip},
			{at: 15 * time.Second, frame: Frame{Warnings: []string{noMetrics}, Body: []byte(`{"kind":"SavingsReport","total":{"pods":4}}` + "\n")}},
		}},
		{name: "terminal", mode: Terminal, width: 80, height: 24, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
			{at: 5 * time.Second, frame: Frame{Body: []byte(reportA)}},
			{at: 10 * time.Second, frame: Frame{Body: []byte(reportB)}},
			{at: 15 * time.Second, err: blip},
			{at: 20 * time.Second, frame: Frame{Warnings: []string{noMetrics}, Body: []byte(reportB)}},
		}},
		{name: "terminal-size-unknown", mode: Terminal, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
		}},
		{name: "terminal-too-small", mode: Terminal, width: 16, height: 4, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
		}},
		{name: "terminal-nothing-read", mode: Terminal, width: 80, height: 24},
		{name: "terminal-resized", mode: Terminal, width: 80, height: 24, steps: []step{
			{frame: Frame{Body: []byte(reportA)}},
			{at: 5 * time.Second, frame: Frame{Body: []byte(reportA)}, width: 60, height: 24},
			{at: 10 * time.Second, frame: Frame{Body: []byte(reportA)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut writes
			width, height := tc.width, tc.height
			s := &Screen{Out: &out, ErrOut: &errOut, Mode: tc.mode, Title: "Every 5s: kubectl overcommit savings",
				Size: func() (int, int) { return width, height }}
			var b strings.Builder
			for _, st := range tc.steps {
				if st.width != 0 {
					width, height = st.width, st.height
					fmt.Fprintf(&b, "=== resized to %dx%d\n", width, height)
				}
				at := t0.Add(st.at)
				var err error
				if st.err != nil {
					fmt.Fprintf(&b, "=== %s read fails: %v\n", at.Format(time.TimeOnly), st.err)
					err = s.Fail(at, st.err)
				} else {
					fmt.Fprintf(&b, "=== %s read:\n%s", at.Format(time.TimeOnly), st.frame.Body)
					err = s.Show(at, st.frame)
				}
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString(transcript(&out, &errOut))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			b.WriteString("=== close\n" + transcript(&out, &errOut))
			golden.Compare(t, filepath.Join("testdata", tc.name+".golden"), []byte(b.String()))
			if tc.mode != Terminal && strings.Contains(b.String(), "\x1b") {
				t.Errorf("escape codes outside a terminal")
			}
		})
	}
}

// transcript shows the writes since the last call, one per block, and forgets them.
func transcript(out, errOut *writes) string {
	var b strings.Builder
	for _, w := range []struct {
		name   string
		writes *writes
	}{{"stdout", out}, {"stderr", errOut}} {
		for _, s := range *w.writes {
			fmt.Fprintf(&b, "--- %s write:\n%s\n", w.name, visible(s))
		}
		*w.writes = nil
	}
	return b.String()
}
