// Package e2e runs overcommit against a real local control plane: kube-apiserver with the real
// admission chain, kube-scheduler, kwok nodes with heartbeats, metrics-server, hollow kubelets
// (kubemark) and the webhook as a process, all on 127.0.0.1. One cluster serves the whole run.
//
// Run with `make test-e2e`, or `go test -tags e2e ./test/e2e/ -run X -v -args -bin-dir=$PWD/bin`.
package e2e
