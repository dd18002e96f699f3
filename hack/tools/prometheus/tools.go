//go:build tools

// Package tools pins promtool, which checks and unit-tests the alerting rules of
// deploy/components/monitoring (make test-monitoring).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
