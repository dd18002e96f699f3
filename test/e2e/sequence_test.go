//go:build e2e

package e2e

import (
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/nodewrites"
)

// TestNeverCompoundsSequence: 1,000 mixed status writes, allocatable exact after each (webhook
// mode). Before the rule compared the write with the stored object, the kubelet's
// conditions-only diff patches multiplied the webhook's own output again.
func TestNeverCompoundsSequence(t *testing.T) {
	const name = "seq-webhook"
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: names.KubeletUser(name), Groups: []string{"system:nodes", "system:authenticated"}}
	kubelet, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodewrites.Run(t, env.Client(), kubelet, name)
}
