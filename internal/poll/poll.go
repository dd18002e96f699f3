// Package poll waits for a condition by checking it again and again: the one wait loop of the
// tests and of the programs under hack/.
package poll

import (
	"context"
	"fmt"
	"time"
)

// Until calls check every interval until it returns nil, timeout passes or ctx ends. check runs
// at least once, and once more after the last pause, so a condition that holds by the deadline
// is seen. The error names what was awaited and carries check's last error, which is what a
// reader of a timed-out run needs.
func Until(ctx context.Context, interval, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, err)
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %v)", what, ctx.Err(), err)
		case <-timer.C:
		}
	}
}
