//go:build e2e

package policy

import (
	"testing"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/nodewrites"
)

// TestNeverCompoundsSequence: 1,000 mixed status writes, allocatable exact after each (policy mode).
func TestNeverCompoundsSequence(t *testing.T) {
	const name = "seq-policy"
	nodewrites.Run(t, env.Client(), impersonate(t, names.KubeletUser(name)), name)
}
