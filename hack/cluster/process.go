package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a process group gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// process is one control-plane component running in its own process group.
type process struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // exit error, valid after done is closed
	// healthURL, if set, answers 200 once the component serves.
	healthURL string
}

// startProcess starts binary with args in its own process group, logging to <logDir>/<name>.log.
func startProcess(name, binary string, args []string, logDir string, env []string) (*process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("start %s: %w (run `make tools` to build the control-plane binaries)", name, err)
	}
	logFile := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer f.Close() // the child holds its own descriptor
	fmt.Fprintf(f, "### %s %s %s\n", time.Now().Format(time.RFC3339), binary, strings.Join(args, " "))

	cmd := exec.Command(binary, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Stop signals the whole group, and a terminal's Ctrl-C reaches only
		// the runner, which then shuts everything down in order.
		Setpgid: true,
		// If the runner dies without cleaning up (SIGKILL, panic), the kernel kills the child.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logFile: logFile, started: time.Now(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace, and waits for the exit.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	pgid := p.pid() // Setpgid makes the group id equal to the leader's pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children the leader left behind in its group.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group of %s (%d): %w", p.name, pgid, err)
	}
	return nil
}

// failure wraps err with the exit status (if any) and the tail of the process's log.
func (p *process) failure(err error) error {
	state := "still running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Errorf("%s: %w (%s)\n--- last lines of %s ---\n%s", p.name, err, state, p.logFile, tail(p.logFile, 30))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitFor polls check every interval until it returns nil, the process exits, or timeout passes.
// The error carries check's last error and the log tail.
func (p *process) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.failure(fmt.Errorf("exited while waiting for %s (last check: %v)", what, last))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return p.failure(fmt.Errorf("not %s after %s (last check: %v)", what, timeout, last))
			}
			// Interrupted (Ctrl-C): the log tail would only distract.
			return fmt.Errorf("%s: interrupted while waiting for %s: %w", p.name, what, ctx.Err())
		case <-tick.C:
		}
	}
}

func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// discard is an io.Writer for a nil Options.Log.
var discard io.Writer = io.Discard
