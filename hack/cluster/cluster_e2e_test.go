//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/internal/poll"
)

var binDir = flag.String("bin-dir", "../../bin", "directory with the binaries from hack/build-tools.sh")

// TestCluster starts the control plane with kwok and metrics-server, checks that a kwok node
// turns Ready and that metrics.k8s.io serves the usage kwok simulates for it, runs a hollow
// kubelet, then stops everything and checks that no process and no work dir is left.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	c, err := Start(ctx, Options{
		BinDir:        *binDir,
		Log:           testWriter{t},
		Kwok:          true,
		MetricsServer: true,
		KwokHeartbeat: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Stop()
		}
	}()
	cs := c.Client()

	node := KwokNode("kwok-0", "4", "16Gi")
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	if err := c.WaitNodeReady(ctx, node.Name, time.Minute); err != nil {
		t.Fatal(err)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "busy",
			Namespace:   "default",
			Annotations: map[string]string{KwokUsageCPUAnnotation: "750m", KwokUsageMemoryAnnotation: "300Mi"},
		},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": node.Name},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("2"),
				}},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	waitFor(t, ctx, 2*time.Minute, "pod Running on kwok-0", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != node.Name || p.Status.Phase != corev1.PodRunning {
			return errors.New("node " + p.Spec.NodeName + ", phase " + string(p.Status.Phase))
		}
		return nil
	})

	mc, err := metricsclient.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// CPU usage is a rate, so metrics-server needs two scrapes (10 s apart) before it reports.
	waitFor(t, ctx, 2*time.Minute, "NodeMetrics for kwok-0 near the pod's simulated usage", func() error {
		m, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cpu, mem := m.Usage.Cpu().MilliValue(), m.Usage.Memory().Value()
		t.Logf("NodeMetrics kwok-0: cpu=%dm memory=%d window=%s", cpu, mem, m.Window.Duration)
		if cpu < 700 || cpu > 800 {
			return errors.New("cpu usage " + m.Usage.Cpu().String() + ", want about 750m")
		}
		if mem != 300<<20 {
			return errors.New("memory usage " + m.Usage.Memory().String() + ", want 300Mi")
		}
		return nil
	})

	// kwok's heartbeats (every 5 s here) are nodes/status patches, recorded in the audit log.
	waitFor(t, ctx, time.Minute, "kwok heartbeats for kwok-0 in the audit log", func() error {
		data, err := os.ReadFile(c.AuditLogFile())
		if err != nil {
			return err
		}
		n := 0
		for _, line := range bytes.Split(data, []byte("\n")) {
			var ev struct {
				Verb string `json:"verb"`
				User struct {
					Username string `json:"username"`
				} `json:"user"`
				ObjectRef struct {
					Name        string `json:"name"`
					Subresource string `json:"subresource"`
				} `json:"objectRef"`
				ResponseStatus struct {
					Code int `json:"code"`
				} `json:"responseStatus"`
			}
			if json.Unmarshal(line, &ev) != nil {
				continue
			}
			if ev.ObjectRef.Name == node.Name && ev.ObjectRef.Subresource == "status" && ev.User.Username == "kwok-controller" && ev.ResponseStatus.Code == 200 {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d successful status writes by kwok-controller so far", n)
		}
		return nil
	})

	k, err := c.StartKubelet(ctx, "hollow-0")
	if err != nil {
		t.Fatalf("start kubelet: %v", err)
	}
	if k.rootDir == "" {
		t.Errorf("the hollow kubelet's root dir was not found in its log; Stop cannot remove it")
	}
	hollow, err := cs.CoreV1().Nodes().Get(ctx, k.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hollow node allocatable: cpu=%s memory=%s", hollow.Status.Allocatable.Cpu(), hollow.Status.Allocatable.Memory())

	pids := c.PIDs()
	workDir := c.WorkDir()
	// Everything binds 127.0.0.1, except the hollow kubelet's port: kubemark has no bind flag.
	for _, l := range listeners(t, pids) {
		t.Logf("listening: %s", l)
		if !strings.HasPrefix(l.addr, "127.0.0.1:") && l.addr != "0.0.0.0:"+strconv.Itoa(k.Port) && l.addr != "[::]:"+strconv.Itoa(k.Port) {
			t.Errorf("pid %d listens on %s, want 127.0.0.1 only", l.pid, l.addr)
		}
	}
	if len(pids) != 7 { // etcd, apiserver, controller-manager, scheduler, kwok, metrics-server, kubelet
		t.Errorf("PIDs() = %v, want 7 processes", pids)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(workDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s still exists after Stop (%v)", workDir, err)
	}
	if _, err := os.Stat(k.rootDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kubelet root dir %s left behind (%v)", k.rootDir, err)
	}
	if len(k.sockets) == 0 {
		t.Errorf("no fake CRI socket of the hollow kubelet found in /tmp")
	}
	for _, s := range k.sockets {
		if _, err := os.Stat(s); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("kubelet socket %s left behind (%v)", s, err)
		}
	}
}

// TestStartFailureCleansUp checks that a failed start (a missing binary) leaves nothing behind.
func TestStartFailureCleansUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A bin dir with only etcd and kube-apiserver: the controller-manager is missing.
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		target, err := filepath.Abs(filepath.Join(*binDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	work := filepath.Join(t.TempDir(), "work")
	_, err := Start(ctx, Options{BinDir: bin, WorkDir: work, Log: testWriter{t}})
	if err == nil {
		t.Fatal("Start succeeded without kube-controller-manager")
	}
	t.Logf("start failed as expected: %v", err)
	// WorkDir was given, so it stays (with the logs); the processes must be gone.
	if out := pgrepWorkDir(t, work); len(out) != 0 {
		t.Errorf("processes still running with %s in their command line: %v", work, out)
	}
}

type listener struct {
	pid  int
	addr string
}

func (l listener) String() string { return fmt.Sprintf("pid %d on %s", l.pid, l.addr) }

// listeners returns the TCP sockets in LISTEN state that the processes own, from /proc.
func listeners(t *testing.T, pids []int) []listener {
	owner := map[string]int{} // socket inode -> pid
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && strings.HasPrefix(target, "socket:[") {
				owner[strings.Trim(strings.TrimPrefix(target, "socket:"), "[]")] = pid
			}
		}
	}
	var out []listener
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			if pid, ok := owner[f[9]]; ok {
				out = append(out, listener{pid: pid, addr: procAddr(f[1])})
			}
		}
	}
	return out
}

// procAddr decodes /proc/net/tcp's hex "0100007F:1F90" (little-endian IPv4 on x86) to
// "127.0.0.1:8080"; IPv6 is decoded only for the any and loopback addresses.
func procAddr(s string) string {
	host, portHex, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(portHex, 16, 16)
	switch host {
	case "0100007F":
		host = "127.0.0.1"
	case "00000000":
		host = "0.0.0.0"
	case "00000000000000000000000000000000":
		host = "[::]"
	case "00000000000000000000000001000000":
		host = "[::1]"
	}
	return host + ":" + strconv.FormatUint(port, 10)
}

// pgrepWorkDir lists processes whose command line mentions dir.
func pgrepWorkDir(t *testing.T, dir string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir)) {
			found = append(found, e.Name()+": "+string(cmdline))
		}
	}
	return found
}

func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll.Until(ctx, time.Second, timeout, what, check); err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestComponentCrashReported checks that a component dying during start fails Start with its
// exit status and log, and that everything else is stopped.
func TestComponentCrashReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := filepath.Join(t.TempDir(), "work")
	_, err := Start(ctx, Options{
		BinDir:  *binDir,
		WorkDir: work,
		Log:     testWriter{t},
		// A "webhook" that rejects its flags and exits at once.
		Webhook: &WebhookOptions{Binary: *binDir + "/kubectl"},
	})
	if err == nil {
		t.Fatal("Start succeeded with a webhook that exits")
	}
	t.Logf("start failed as expected: %v", err)
	for _, want := range []string{"overcommit-webhook", "exited", "last lines of"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if out := pgrepWorkDir(t, work); len(out) != 0 {
		t.Errorf("processes still running with %s in their command line: %v", work, out)
	}
}
