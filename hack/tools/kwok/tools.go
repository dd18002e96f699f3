//go:build tools

// Package tools pins the kwok binaries that hack/build-tools.sh builds.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
