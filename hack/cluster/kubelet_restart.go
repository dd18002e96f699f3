package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Restart stops the hollow kubelet and starts a new one under the same node name, as when a
// kubelet process restarts: the Node object and the pods bound to it stay, and the new kubelet
// finds its node, reports its own view of it and admits the node's pods again
// (HandlePodAdditions re-runs admission for every non-terminal pod; a real kubelet keeps its
// checkpoints across a restart, kubemark starts from a fresh root dir, but neither skips that
// admission). Restart returns the new Kubelet once it has written node status, i.e. the Ready
// condition's heartbeat moved from the one the stopped kubelet left; the receiver is stopped and
// must not be used again.
func (k *Kubelet) Restart(ctx context.Context) (*Kubelet, error) {
	c := k.c
	begin := time.Now()
	if err := k.Stop(); err != nil {
		return nil, fmt.Errorf("stopping kubelet %s: %w", k.Name, err)
	}
	// Read after the old process is gone, so no later write can be its own.
	before, err := c.readyHeartbeat(ctx, k.Name)
	if err != nil {
		return nil, fmt.Errorf("reading node %s after stopping its kubelet: %w", k.Name, err)
	}
	nk, err := c.StartKubelet(ctx, k.Name)
	if err != nil {
		return nil, err
	}
	// StartKubelet returns at once here: the node is still Ready from before.
	if err := nk.proc.waitFor(ctx, "writing node status after the restart", 90*time.Second, func(ctx context.Context) error {
		hb, err := c.readyHeartbeat(ctx, k.Name)
		if err != nil {
			return err
		}
		if hb.Equal(&before) {
			return fmt.Errorf("the Ready heartbeat is still %s, from the stopped kubelet", hb.UTC().Format(time.RFC3339))
		}
		return nil
	}); err != nil {
		_ = nk.Stop()
		return nil, err
	}
	c.logf("kubelet %s restarted and wrote node status (%s)", k.Name, since(begin))
	return nk, nil
}

// readyHeartbeat returns the lastHeartbeatTime of the node's Ready condition.
func (c *Cluster) readyHeartbeat(ctx context.Context, name string) (metav1.Time, error) {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return metav1.Time{}, err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.LastHeartbeatTime, nil
		}
	}
	return metav1.Time{}, errors.New("no Ready condition")
}
