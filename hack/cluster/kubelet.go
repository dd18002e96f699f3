package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubelet is a kubemark hollow node: the real kubelet code (node registration, the node-status
// loop, pod admission) with a fake container runtime, in one process.
type Kubelet struct {
	Name string
	// Port is the kubelet's HTTPS port. kubemark binds it on all interfaces; it has no flag to
	// change that.
	Port int

	c       *Cluster
	proc    *process
	sockets []string // the fake CRI sockets it created in /tmp
}

// StartKubelet runs a hollow kubelet that registers node name as system:node:<name> (so the
// Node authorizer and NodeRestriction apply as to a real kubelet) and waits for the node to be
// Ready. The node reports 1 CPU and 3840Mi (kubemark's fixed fake machine).
func (c *Cluster) StartKubelet(ctx context.Context, name string) (*Kubelet, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	kc, err := c.writeKubeconfig("kubelet-"+name+".kubeconfig", "system:node:"+name, "system:nodes")
	if err != nil {
		return nil, err
	}
	tmp := c.path("kubelet-" + name)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create kubelet dir: %w", err)
	}
	p, err := startProcess("kubelet-"+name, c.bin("kubemark"), []string{
		"--morph=kubelet",
		"--name=" + name,
		"--kubeconfig=" + kc,
		"--kubelet-port=" + strconv.Itoa(port),
		// The read-only port is a fixed 10255 by default: a second kubelet would die on it.
		"--kubelet-read-only-port=0",
		// Otherwise it dials containerd's socket for images.
		"--use-host-image-service=false",
	}, c.logDir(), []string{
		// kubemark puts its root dir (pods, plugins, certificates) in TMPDIR.
		"TMPDIR=" + tmp,
	})
	if err != nil {
		return nil, err
	}
	k := &Kubelet{Name: name, Port: port, c: c, proc: p}
	c.mu.Lock()
	c.kubelets = append(c.kubelets, k)
	c.mu.Unlock()

	if err := p.waitFor(ctx, "registering a Ready node "+name, 90*time.Second, func(ctx context.Context) error {
		return c.nodeReady(ctx, name)
	}); err != nil {
		_ = k.Stop()
		return nil, err
	}
	k.sockets = criSockets(p.pid())
	c.logf("kubelet %s ready, port %d (%s)", name, port, since(p.started))
	return k, nil
}

// Stop kills the hollow kubelet. Its Node object stays, as when a real kubelet dies.
func (k *Kubelet) Stop() error {
	c := k.c
	c.mu.Lock()
	c.kubelets = slices.DeleteFunc(c.kubelets, func(o *Kubelet) bool { return o == k })
	c.mu.Unlock()
	err := k.proc.stop()
	for _, s := range k.sockets {
		_ = os.Remove(s)
	}
	return err
}

// LogFile is the kubelet's log.
func (k *Kubelet) LogFile() string { return k.proc.logFile }

// nodeReady returns nil once the node exists with Ready=True.
func (c *Cluster) nodeReady(ctx context.Context, name string) error {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("condition Ready=%s (%s: %s)", cond.Status, cond.Reason, cond.Message)
		}
	}
	return errors.New("no Ready condition yet")
}

// criSockets finds the unix sockets under /tmp that process pid listens on: kubemark's fake
// runtime creates /tmp/kubelet_remote_<random>.sock regardless of TMPDIR, and a killed kubelet
// leaves it behind.
func criSockets(pid int) []string {
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return nil
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil
	}
	var paths []string
	for _, line := range strings.Split(string(data), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(line)
		if len(f) == 8 && inodes[f[6]] && strings.HasPrefix(f[7], "/tmp/kubelet_remote_") && !slices.Contains(paths, f[7]) {
			paths = append(paths, f[7])
		}
	}
	return paths
}
