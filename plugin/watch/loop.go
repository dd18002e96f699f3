package watch

import (
	"context"
	"time"
)

// Loop reads and shows a frame every Interval until its context is done.
type Loop struct {
	Screen   *Screen
	Interval time.Duration
	// Read reads the cluster and renders the frame. Its first error ends the loop, as the
	// one-shot command would end; a later one is shown and the loop goes on, since a watch
	// should outlast an apiserver restart.
	Read func(context.Context) (Frame, error)
	// Now is the clock of the header (nil: time.Now).
	Now func() time.Time
	// Wait returns after d or when ctx is done, whichever is first (nil: a timer).
	Wait func(ctx context.Context, d time.Duration)
}

// Run reads and shows frames until ctx is done, then returns nil: Ctrl-C is how a watch ends.
// It returns the first read's error, or an error writing a frame.
func (l *Loop) Run(ctx context.Context) (err error) {
	now, wait := l.Now, l.Wait
	if now == nil {
		now = time.Now
	}
	if wait == nil {
		wait = sleep
	}
	defer func() {
		if cerr := l.Screen.Close(); err == nil {
			err = cerr
		}
	}()
	for first := true; ; first = false {
		at := now()
		f, readErr := l.Read(ctx)
		switch {
		case ctx.Err() != nil:
			// Interrupted, maybe in the middle of the read: whatever it returned is moot.
			return nil
		case readErr != nil && first:
			return readErr
		case readErr != nil:
			err = l.Screen.Fail(at, readErr)
		default:
			err = l.Screen.Show(at, f)
		}
		if err != nil {
			return err
		}
		if wait(ctx, l.Interval); ctx.Err() != nil {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
