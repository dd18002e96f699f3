package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// memoryLimitEnv holds the container's memory limit in bytes (the Deployment sets it from
// limits.memory with a resourceFieldRef, which cannot compute a fraction of it).
const memoryLimitEnv = "MEMORY_LIMIT"

// applyMemoryLimit sets the Go runtime's soft memory limit to 90% of MEMORY_LIMIT unless
// GOMEMLIMIT is set (the runtime has applied that one already, and an explicit setting wins).
// The 10% left is for what the soft limit does not count (thread stacks, fragmentation, cgo) and
// for the moment the collector needs to react: at 100% the heap reaches the container's limit
// before the collector works harder, and the kernel kills the process. set is
// debug.SetMemoryLimit; it returns the limit it set, 0 when it set none.
func applyMemoryLimit(log *slog.Logger, lookupEnv func(string) (string, bool), set func(int64) int64) int64 {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		log.Info("GOMEMLIMIT is set; MEMORY_LIMIT is ignored", "GOMEMLIMIT", v)
		return 0
	}
	v, ok := lookupEnv(memoryLimitEnv)
	if !ok || v == "" {
		return 0
	}
	limit, err := parseMemoryLimit(v)
	if err != nil {
		log.Warn("no Go memory limit", "err", err)
		return 0
	}
	soft := limit - limit/10
	set(soft)
	log.Info("Go memory limit set to 90% of the container's", "limitBytes", limit, "goMemLimitBytes", soft)
	return soft
}

// parseMemoryLimit reads a byte count as a resourceFieldRef with the default divisor writes it.
func parseMemoryLimit(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive number of bytes", memoryLimitEnv, v)
	}
	return n, nil
}
