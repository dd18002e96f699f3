// Package restart proves, with real kubelet code (kubemark hollow kubelets), what a kubelet
// restart does to pods that were admitted on overcommitted capacity, in policy mode (a
// MutatingAdmissionPolicy inside kube-apiserver) and in webhook mode with the webhook up and
// unreachable. One local control plane serves the run; the tests switch it between the modes.
//
// Run with `make test-e2e`, or
// `go test -tags e2e -count=1 -v ./test/e2e/restart/ -args -bin-dir=$PWD/bin`.
package restart
