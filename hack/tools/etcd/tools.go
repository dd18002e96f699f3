//go:build tools

// Package tools pins the etcd binaries that hack/build-tools.sh builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
