package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/internal/freeport"
)

// Kubelet is a kubemark hollow node: the real kubelet code (node registration, the node-status
// loop, pod admission) with a fake container runtime, in one process.
type Kubelet struct {
	Name string
	// Port is the kubelet's HTTPS port. kubemark binds it on all interfaces; it has no flag to
	// change that.
	Port int

	c    *Cluster
	proc *process
	// rootDir is the kubelet's root directory: kubemark always creates it in /tmp, whatever
	// TMPDIR says, so Stop removes it.
	rootDir string
	// sockets are the fake CRI sockets (see removeStaleCRISockets) that appeared in /tmp while
	// this kubelet started: its own, or a concurrent run's.
	sockets []string
}

// StartKubelet runs a hollow kubelet that registers node name as system:node:<name> (so the
// Node authorizer and NodeRestriction apply as to a real kubelet) and waits for the node to be
// Ready. The node reports 1 CPU and 3840Mi (kubemark's fixed fake machine).
func (c *Cluster) StartKubelet(ctx context.Context, name string) (*Kubelet, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	kc, err := c.writeKubeconfig("kubelet-"+name+".kubeconfig", "system:node:"+name, "system:nodes")
	if err != nil {
		return nil, err
	}
	before := criSockets()
	p, err := startProcess("kubelet-"+name, c.bin("kubemark"), []string{
		"--morph=kubelet",
		"--name=" + name,
		"--kubeconfig=" + kc,
		"--kubelet-port=" + strconv.Itoa(port),
		// The read-only port is a fixed 10255 by default: a second kubelet would die on it.
		"--kubelet-read-only-port=0",
		// Otherwise it dials containerd's socket for images.
		"--use-host-image-service=false",
	}, c.logDir(), nil)
	if err != nil {
		return nil, err
	}
	k := &Kubelet{Name: name, Port: port, c: c, proc: p}
	c.mu.Lock()
	c.kubelets = append(c.kubelets, k)
	c.mu.Unlock()

	if err := p.waitFor(ctx, "registering a Ready node "+name, 90*time.Second, func(ctx context.Context) error {
		if k.rootDir == "" {
			k.rootDir = kubeletRootDir(p.logFile)
		}
		return c.nodeReady(ctx, name)
	}); err != nil {
		_ = k.Stop()
		return nil, err
	}
	for _, s := range criSockets() {
		if !slices.Contains(before, s) {
			k.sockets = append(k.sockets, s)
		}
	}
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
	k.cleanup()
	return err
}

// cleanup removes what the stopped kubelet left in /tmp.
func (k *Kubelet) cleanup() {
	if k.rootDir == "" {
		k.rootDir = kubeletRootDir(k.proc.logFile)
	}
	if k.rootDir != "" {
		_ = os.RemoveAll(k.rootDir)
	}
	for _, s := range k.sockets {
		if refused(s) {
			_ = os.Remove(s)
		}
	}
	removeStaleCRISockets()
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

var rootDirLine = regexp.MustCompile(`Using (/\S+/hollow-kubelet\.\d+) as root dir for hollow-kubelet`)

// kubeletRootDir reads the root directory kubemark logs at startup (the latest start's).
func kubeletRootDir(logFile string) string {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return ""
	}
	// A kubelet started again under the same name appends to the same log: read its own start.
	if i := bytes.LastIndex(data, []byte("\n### ")); i >= 0 {
		data = data[i:]
	}
	m := rootDirLine.FindSubmatch(data)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// removeStaleCRISockets removes /tmp/kubelet_remote_<random>.sock files that no process listens
// on any more. kubemark's fake runtime creates one per start and never in TMPDIR; a killed
// kubelet leaves it behind, and it does not say which one is its own (nor does /proc/net/unix
// list them on every kernel). A socket that refuses connections is garbage whoever made it;
// young ones are skipped, as their kubelet may be between bind and listen.
func removeStaleCRISockets() {
	for _, p := range criSockets() {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || time.Since(fi.ModTime()) < 10*time.Second {
			continue
		}
		if refused(p) {
			_ = os.Remove(p)
		}
	}
}

func criSockets() []string {
	paths, _ := filepath.Glob("/tmp/kubelet_remote_*.sock")
	return paths
}

// refused reports whether nothing listens on the unix socket any more.
func refused(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
