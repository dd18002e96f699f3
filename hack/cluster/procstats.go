package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcessStats are a process's CPU time and memory as /proc reports them.
type ProcessStats struct {
	// CPU is user plus system time.
	CPU time.Duration
	// RSS is the resident memory now, PeakRSS its high-water mark (VmHWM).
	RSS, PeakRSS int64
}

// ReadProcessStats reads the stats of a process (the webhook, or the harness itself).
func ReadProcessStats(pid int) (ProcessStats, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcessStats{}, fmt.Errorf("reading process stats: %w", err)
	}
	// Fields after the command name (which may contain spaces) start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcessStats{}, errors.New("unexpected /proc/pid/stat format")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 22 {
		return ProcessStats{}, errors.New("short /proc/pid/stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	ps := ProcessStats{
		CPU: time.Duration(utime+stime) * time.Second / ticksPerSecond,
		RSS: rssPages * int64(os.Getpagesize()),
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcessStats{}, fmt.Errorf("reading process status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		var kib int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kib); n == 1 {
			ps.PeakRSS = kib << 10
		}
	}
	return ps, nil
}
