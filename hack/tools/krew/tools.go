//go:build tools

// Package tools pins the krew binaries that hack/build-tools.sh builds.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
