//go:build tools

// Package tools pins the metrics-server binaries that hack/build-tools.sh builds.
package tools

import (
	_ "sigs.k8s.io/metrics-server/cmd/metrics-server"
)
