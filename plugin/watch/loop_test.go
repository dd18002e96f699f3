package watch

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reads returns a Read that returns the given reads in turn, and then is interrupted: it
// cancels ctx, as Ctrl-C would in the middle of a read, and returns the context's error.
func reads(cancel context.CancelFunc, rs ...step) func(context.Context) (Frame, error) {
	i := 0
	return func(ctx context.Context) (Frame, error) {
		if i == len(rs) {
			cancel()
			return Frame{}, ctx.Err()
		}
		i++
		return rs[i-1].frame, rs[i-1].err
	}
}

// fakeClock advances by the interval at every wait, without waiting.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time                          { return c.now }
func (c *fakeClock) Wait(_ context.Context, d time.Duration) { c.now = c.now.Add(d) }

func TestLoop(t *testing.T) {
	blip := errors.New("connection refused")
	for _, tc := range []struct {
		name       string
		reads      []step
		wantOut    string
		wantErrOut string
		wantErr    error
	}{
		{
			name:    "identical reads make one frame",
			reads:   []step{{frame: Frame{Body: []byte("A\n")}}, {frame: Frame{Body: []byte("A\n")}}},
			wantOut: "Every 5s: x   Wed Dec  2 14:30:00 2026\nA\n",
		},
		{
			name:    "a changed read makes another frame",
			reads:   []step{{frame: Frame{Body: []byte("A\n")}}, {frame: Frame{Body: []byte("A\n")}}, {frame: Frame{Body: []byte("B\n")}}},
			wantOut: "Every 5s: x   Wed Dec  2 14:30:00 2026\nA\n\nEvery 5s: x   Wed Dec  2 14:30:10 2026\nB\n",
		},
		{
			name:    "the first read's error ends the watch",
			reads:   []step{{err: blip}, {frame: Frame{Body: []byte("A\n")}}},
			wantErr: blip,
		},
		{
			name:       "a later read's error does not",
			reads:      []step{{frame: Frame{Body: []byte("A\n")}}, {err: blip}, {frame: Frame{Body: []byte("B\n")}}},
			wantOut:    "Every 5s: x   Wed Dec  2 14:30:00 2026\nA\n\nEvery 5s: x   Wed Dec  2 14:30:10 2026\nB\n",
			wantErrOut: "14:30:05 error: connection refused; keeping the read of 14:30:00 and trying again\n14:30:10 read the cluster again\n",
		},
		{
			name: "interrupted during the first read",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errOut bytes.Buffer
			clock := &fakeClock{now: t0}
			l := &Loop{Screen: &Screen{Out: &out, ErrOut: &errOut, Title: "Every 5s: x"}, Interval: 5 * time.Second,
				Read: reads(cancel, tc.reads...), Now: clock.Now, Wait: clock.Wait}
			err := l.Run(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Run() = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantOut, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrOut, errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoopStopsOnCancel: with the real timer and an interval far longer than the test, Run
// returns nil as soon as its context is cancelled, and a terminal gets its cursor back.
func TestLoopStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	read := make(chan struct{}, 1)
	l := &Loop{Screen: &Screen{Out: &out, ErrOut: &out, Mode: Terminal, Title: "Every 24h: x"}, Interval: 24 * time.Hour,
		Read: func(context.Context) (Frame, error) {
			read <- struct{}{}
			return Frame{Body: []byte("A\n")}, nil
		}}
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	<-read
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	if got := out.String(); !strings.HasSuffix(got, "\n"+showCursor) {
		t.Errorf("output ends %q, want a new line and the cursor shown", got[max(0, len(got)-20):])
	}
}
