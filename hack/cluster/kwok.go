package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/internal/freeport"
)

// Names kwok and metrics-server read from objects.
const (
	// KwokNodeAnnotation (value "fake") marks the nodes kwok manages; see --manage-nodes-with-annotation-selector.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	// KwokUsageCPUAnnotation and KwokUsageMemoryAnnotation on a pod set the usage kwok reports
	// for it (kwok's usage-from-annotation ClusterResourceUsage); a node's usage is its pods' sum.
	KwokUsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"
	KwokUsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory"
	// ResourceMetricsPathAnnotation tells metrics-server (>= 0.7) which path to scrape on the
	// node instead of /metrics/resource. kwok serves each node's metrics under its own path.
	ResourceMetricsPathAnnotation = "metrics.k8s.io/resource-metrics-path"
	// KwokNodeLabel (type=kwok) selects the nodes metrics-server scrapes (--node-selector), so it
	// never dials a kubemark kubelet, whose address is the host's, not loopback.
	KwokNodeLabel      = "type"
	KwokNodeLabelValue = "kwok"
)

// kwokStageFiles are the configs hack/build-tools.sh copies from the kwok module.
var kwokStageFiles = []string{
	"node-initialize.yaml",
	"node-heartbeat.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
	"metrics-resource.yaml",
	"usage-from-annotation.yaml",
}

type kwokState struct {
	proc *process
	port int
}

// KwokNode returns a node for kwok to manage, with the given capacity (allocatable equal to it),
// ready for metrics-server to scrape through kwok. Create it with the client.
func KwokNode(name, cpu, memory string) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				KwokNodeLabel:            KwokNodeLabelValue,
			},
			Annotations: map[string]string{
				KwokNodeAnnotation:            "fake",
				ResourceMetricsPathAnnotation: "/metrics/nodes/" + name + "/metrics/resource",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res.DeepCopy(),
		},
	}
}

// kwokStagesDir finds the stage configs next to the versioned kwok binary that bin/kwok links to.
func (c *Cluster) kwokStagesDir() (string, error) {
	binary, err := filepath.EvalSymlinks(c.bin("kwok"))
	if err != nil {
		return "", fmt.Errorf("kwok: %w (run `make tools`)", err)
	}
	dir := filepath.Join(filepath.Dir(binary), "stages")
	for _, f := range kwokStageFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("kwok stage config missing: %w (run `make tools`)", err)
		}
	}
	return dir, nil
}

var (
	heartbeatDelay  = regexp.MustCompile(`(?m)^(\s+durationMilliseconds:\s*)\d+\s*$`)
	heartbeatJitter = regexp.MustCompile(`(?m)^(\s+jitterDurationMilliseconds:\s*)\d+\s*$`)
)

// heartbeatStage rewrites kwok's node-heartbeat stage to beat every interval without jitter.
func heartbeatStage(src, dst string, interval time.Duration) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read kwok heartbeat stage: %w", err)
	}
	// Fail loudly if a kwok upgrade changes the file, rather than silently keeping its interval.
	if !heartbeatDelay.Match(data) || !heartbeatJitter.Match(data) {
		return fmt.Errorf("kwok heartbeat stage %s has no durationMilliseconds/jitterDurationMilliseconds to rewrite", src)
	}
	ms := []byte("${1}" + strconv.FormatInt(interval.Milliseconds(), 10))
	data = heartbeatDelay.ReplaceAll(data, ms)
	// kwok's jitter is the upper bound of the delay, not an addition: a jitter at or below the
	// duration becomes the delay itself, so 0 would make heartbeats fire back to back (and stop
	// once a beat lands in the same second as the last). Equal bounds mean exactly interval.
	data = heartbeatJitter.ReplaceAll(data, ms)
	return writeFile(dst, data)
}

func (c *Cluster) launchKwok() error {
	stages, err := c.kwokStagesDir()
	if err != nil {
		return err
	}
	port, err := freeport.Port()
	if err != nil {
		return err
	}
	kc, err := c.writeKubeconfig("kwok.kubeconfig", "kwok-controller", "system:masters")
	if err != nil {
		return err
	}
	// metrics-server verifies kwok's serving certificate against the cluster CA.
	tlsPair, err := c.ca.servingFiles("kwok", []string{"127.0.0.1", "localhost"},
		c.path("kwok", "tls.crt"), c.path("kwok", "tls.key"))
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kc,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		// node-initialize publishes these as the node's InternalIP and kubelet port, which
		// metrics-server dials (--kubelet-use-node-status-port).
		"--node-ip=127.0.0.1",
		"--node-port=" + strconv.Itoa(port),
		"--server-address=" + hostPort(port),
		"--tls-cert-file=" + tlsPair.CertFile,
		"--tls-private-key-file=" + tlsPair.KeyFile,
		"--cidr=10.244.0.0/16",
	}
	files := append([]string(nil), kwokStageFiles...)
	sort.Strings(files)
	for _, f := range files {
		path := filepath.Join(stages, f)
		if f == "node-heartbeat.yaml" && c.opts.KwokHeartbeat > 0 {
			path = c.path("kwok", f)
			if err := heartbeatStage(filepath.Join(stages, f), path, c.opts.KwokHeartbeat); err != nil {
				return err
			}
		}
		args = append(args, "--config="+path)
	}
	// kwok also loads $HOME/.kwok/kwok.yaml when it exists; a user's file must not change the
	// cluster, so HOME points into the work dir.
	p, err := startProcess("kwok", c.bin("kwok"), args, c.logDir(), []string{"HOME=" + c.path("kwok")})
	if err != nil {
		return err
	}
	p.healthURL = "http://" + hostPort(port) + "/healthz"
	c.mu.Lock()
	c.kwok = &kwokState{proc: p, port: port}
	c.mu.Unlock()
	return nil
}

func (c *Cluster) waitKwok(ctx context.Context) error {
	p := c.kwok.proc
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := p.waitFor(ctx, "healthy", 60*time.Second, func(ctx context.Context) error {
		_, err := httpGet(ctx, hc, p.healthURL)
		return err
	}); err != nil {
		return err
	}
	c.logf("kwok ready on %s (%s)", hostPort(c.kwok.port), since(p.started))
	return nil
}

// WaitNodeReady waits until the node exists and its Ready condition is True.
func (c *Cluster) WaitNodeReady(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := c.nodeReady(ctx, name)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready after %s: %w", name, timeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
