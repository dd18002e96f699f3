// Package history runs the usage policy's history on the local control plane, in both node-policy
// modes at once: kwok pods whose usage annotations change over time (steady, a burst, quiet again)
// move a node's allocatable a bounded number of times, lower it as soon as the burst shows, and
// raise it no earlier than --usage-raise-after allows; a fresh usage window (a new node, or the
// webhook restarted) holds the node at its pods' requests and says warming-up; and a node that
// reports MemoryPressure is held at its pods' requests, so the real scheduler adds no pod there.
//
// One control plane serves both modes: the node webhook is registered for nodes labelled
// e2e.overcommit.dev/mode=webhook, the MutatingAdmissionPolicy is bound to nodes labelled
// mode=policy, and the webhook publishes the usage targets and requests policy mode reads.
//
// Run with `make test-e2e`, or
// `go test -tags e2e -count=1 -v ./test/e2e/history/ -args -bin-dir=$PWD/bin`.
package history
