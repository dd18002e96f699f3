package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUntil(t *testing.T) {
	errNotYet := errors.New("not yet")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		passOn    int // the call of check that returns nil; 0: none
		timeout   time.Duration
		wantCalls int
		wantErr   string // a part of the error; "" for none
	}{
		{name: "passes at once", ctx: context.Background(), passOn: 1, timeout: time.Second, wantCalls: 1},
		{name: "passes on the third check", ctx: context.Background(), passOn: 3, timeout: time.Second, wantCalls: 3},
		{name: "never passes", ctx: context.Background(), timeout: 50 * time.Millisecond,
			wantErr: "timed out after 50ms waiting for the thing: not yet"},
		{name: "zero timeout checks once", ctx: context.Background(), timeout: 0, wantCalls: 1,
			wantErr: "timed out after 0s waiting for the thing: not yet"},
		{name: "context ended", ctx: cancelled, timeout: time.Minute, wantCalls: 1,
			wantErr: "waiting for the thing: context canceled (last check: not yet)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Until(tt.ctx, 5*time.Millisecond, tt.timeout, "the thing", func() error {
				calls++
				if calls == tt.passOn {
					return nil
				}
				return errNotYet
			})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Until: %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Until: %v, want an error with %q", err, tt.wantErr)
			}
			if tt.wantCalls != 0 {
				if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
					t.Errorf("calls of check (-want +got):\n%s", diff)
				}
			}
			if tt.wantErr != "" && tt.ctx.Err() == nil && !errors.Is(err, errNotYet) {
				t.Errorf("Until: %v does not wrap check's last error", err)
			}
		})
	}
}

// TestUntilWaitsTheInterval: the pause between checks is the interval, not a busy loop.
func TestUntilWaitsTheInterval(t *testing.T) {
	calls := 0
	begin := time.Now()
	err := Until(context.Background(), 20*time.Millisecond, 70*time.Millisecond, "nothing", func() error {
		calls++
		return errors.New("no")
	})
	if err == nil {
		t.Fatal("Until: nil, want a timeout")
	}
	if calls < 3 || calls > 6 {
		t.Errorf("%d checks in %s at a 20ms interval, want 3 to 6", calls, time.Since(begin))
	}
}
