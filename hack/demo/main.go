// Command demo shows overcommit on a real local control plane: three kwok nodes fill up with
// pods that request far more CPU than they use, some pods stay Pending for lack of CPU, one node
// is opted in with `kubectl overcommit enable`, the scheduler places the pending pods on it, and
// `kubectl overcommit savings` sums it up. Last, a pod gets a sidecar injected from a template.
//
//	go run ./hack/demo -bin-dir=bin [-keep]
//
// With -keep the cluster stays up after the demo until Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/shared/names"
)

const (
	namespace  = "demo"
	nodeCount  = 3
	nodeCPU    = "4"
	nodeMemory = "16Gi"
	replicas   = 16 // 16 x 1 CPU requested on 3 x 4 CPU: 12 fit, 4 stay Pending
	cpuRatio   = "2"
)

// deployment is applied with kubectl so the user sees a plain manifest: each pod requests a
// whole CPU but uses 150m (kwok simulates usage from the annotations).
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 16
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        kwok.x-k8s.io/usage-cpu: 150m
        kwok.x-k8s.io/usage-memory: 200Mi
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        resources:
          requests: {cpu: "1", memory: 512Mi}
`

func main() {
	binDir := flag.String("bin-dir", "bin", "directory with the control-plane binaries (make tools) and overcommit-webhook (make build)")
	keep := flag.Bool("keep", false, "leave the cluster running after the demo, until Ctrl-C")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	c         *cluster.Cluster
	cs        kubernetes.Interface
	kubectl   string
	bin       string
	patchedAt time.Time // when the status write that applies the policy was sent
}

func run(ctx context.Context, binDir string, keep bool) (err error) {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return fmt.Errorf("resolve bin dir: %w", err)
	}
	for _, name := range []string{"kube-apiserver", "kubectl", "kwok", "metrics-server", "overcommit-webhook", "kubectl-overcommit"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("%w (run `make build tools` first)", err)
		}
	}

	step("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, metrics-server, overcommit-webhook) in policy mode:\n" +
		"    the node policy runs inside kube-apiserver as the MutatingAdmissionPolicy overcommit-nodes;\n" +
		"    overcommit-webhook injects sidecars")
	c, err := cluster.Start(ctx, cluster.Options{
		BinDir:        bin,
		Log:           os.Stdout,
		Kwok:          true,
		MetricsServer: true,
		Webhook:       &cluster.WebhookOptions{Pods: true},
		NodePolicy:    true,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println()
		fmt.Println("Stopping the cluster ...")
		if stopErr := c.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop cluster: %w", stopErr))
		} else {
			fmt.Println("All processes stopped and temporary files removed.")
		}
	}()
	d := &demo{c: c, cs: c.Client(), kubectl: filepath.Join(bin, "kubectl"), bin: bin}

	if err := d.createNodes(ctx); err != nil {
		return err
	}
	if err := d.fillUp(ctx); err != nil {
		return err
	}
	before, err := d.snapshot(ctx)
	if err != nil {
		return err
	}
	if err := d.optIn(ctx, "kwok-node-1"); err != nil {
		return err
	}
	if err := d.waitAllRunning(ctx); err != nil {
		return err
	}
	after, err := d.snapshot(ctx)
	if err != nil {
		return err
	}
	step("Before and after")
	printTable(before, after)
	fmt.Println()
	if err := d.sh(ctx, "get", "node", "kwok-node-1", "-o",
		`jsonpath={"overcommit.dev/raw:     "}{.metadata.annotations.overcommit\.dev/raw}{"\n"}{"overcommit.dev/applied: "}{.metadata.annotations.overcommit\.dev/applied}{"\n"}`); err != nil {
		return err
	}

	step("Savings across the cluster")
	if err := d.sh(ctx, "overcommit", "savings"); err != nil {
		return err
	}
	if err := d.sidecar(ctx); err != nil {
		return err
	}

	if keep {
		step("The cluster keeps running")
		fmt.Printf("In another terminal:\n\n  export KUBECONFIG=%s\n  export PATH=%s:$PATH\n  kubectl get nodes\n\n", c.Kubeconfig(), bin)
		fmt.Printf("Component logs are in %s.\nPress Ctrl-C to stop the cluster and remove its files.\n", filepath.Join(c.WorkDir(), "logs"))
		<-ctx.Done()
		return nil
	}
	fmt.Println("\nDemo complete: the pending pods were scheduled onto the opted-in node, and a pod got its sidecar.")
	return nil
}

func (d *demo) createNodes(ctx context.Context) error {
	step(fmt.Sprintf("Creating %d kwok nodes with %s CPU and %s memory each", nodeCount, nodeCPU, nodeMemory))
	for i := 1; i <= nodeCount; i++ {
		node := cluster.KwokNode(fmt.Sprintf("kwok-node-%d", i), nodeCPU, nodeMemory)
		if _, err := d.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	for i := 1; i <= nodeCount; i++ {
		if err := d.c.WaitNodeReady(ctx, fmt.Sprintf("kwok-node-%d", i), time.Minute); err != nil {
			return err
		}
	}
	return d.sh(ctx, "get", "nodes", "-L", names.EnabledLabel)
}

func (d *demo) fillUp(ctx context.Context) error {
	step(fmt.Sprintf("Deploying %d pods that each request 1 CPU but use only 150m", replicas))
	fmt.Print(indent(deployment))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := d.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	if err := poll.Until(ctx, pollInterval, time.Minute, "service account demo/default", func() error {
		_, err := d.cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	manifest := filepath.Join(d.c.WorkDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(deployment), 0o600); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := d.sh(ctx, "apply", "-f", manifest); err != nil {
		return err
	}
	capacity := nodeCount * 4
	if err := poll.Until(ctx, pollInterval, 2*time.Minute, fmt.Sprintf("%d pods Running and %d Pending", capacity, replicas-capacity), func() error {
		running, pending, err := d.podCounts(ctx)
		if err != nil {
			return err
		}
		if running != capacity || pending != replicas-capacity {
			return fmt.Errorf("%d running, %d pending", running, pending)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := d.sh(ctx, "get", "pods", "-n", namespace, "--field-selector=status.phase=Pending"); err != nil {
		return err
	}

	step("Why they are Pending: the scheduler's FailedScheduling events")
	if err := poll.Until(ctx, pollInterval, time.Minute, "a FailedScheduling event", func() error {
		evs, err := d.cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("reason", "FailedScheduling").String(),
		})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return errors.New("none yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := d.sh(ctx, "events", "-n", namespace, "--for=pod/"+d.onePending(ctx), "--types=Warning"); err != nil {
		return err
	}

	step("Yet the nodes are almost idle: requests are 100% of allocatable, usage is about 15% (metrics-server)")
	if err := d.waitNodeMetrics(ctx); err != nil {
		return err
	}
	return d.sh(ctx, "top", "nodes")
}

func (d *demo) optIn(ctx context.Context, node string) error {
	step(fmt.Sprintf("What the apiserver would store for %s with a CPU ratio of %s", node, cpuRatio))
	if err := d.sh(ctx, "overcommit", "preview", node, "--cpu-ratio", cpuRatio); err != nil {
		return err
	}
	step(fmt.Sprintf("Opting %s in", node))
	// enable labels and annotates the node, then sends an empty status write so the policy
	// applies now rather than at the next kubelet report.
	d.patchedAt = time.Now()
	if err := d.sh(ctx, "overcommit", "enable", node, "--cpu-ratio", cpuRatio); err != nil {
		return err
	}
	return d.sh(ctx, "get", "node", node, "-o", "custom-columns=NODE:.metadata.name,CAPACITY_CPU:.status.capacity.cpu,ALLOCATABLE_CPU:.status.allocatable.cpu")
}

// sidecarTemplate is a native sidecar template as an operator keeps it.
const sidecarTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: log-shipper
  namespace: overcommit-system
  labels: {overcommit.dev/sidecar-template: "true"}
data:
  template.yaml: |
    native: true
    containers:
    - name: log-shipper
      image: registry.example/log-shipper:2.1
      volumeMounts: [{name: logs, mountPath: /var/log/app}]
    volumes:
    - {name: logs, emptyDir: {}}
    volumeMounts: [{name: logs, mountPath: /var/log/app}]
`

// sidecarPod asks for the template.
const sidecarPod = `apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: demo
  annotations: {sidecar.overcommit.dev/inject: log-shipper}
spec:
  containers:
  - name: api
    image: registry.example/api:1.0
`

func (d *demo) sidecar(ctx context.Context) error {
	step("Sidecar injection: a template, an opted-in namespace, and a pod that asks for it")
	fmt.Print(indent(sidecarTemplate))
	if err := d.apply(ctx, "log-shipper.yaml", sidecarTemplate); err != nil {
		return err
	}
	if err := d.sh(ctx, "label", "namespace", namespace, names.SidecarInjectionLabel+"="+names.SidecarInjectionEnabled); err != nil {
		return err
	}
	fmt.Print(indent(sidecarPod))
	// The webhook's template informer picks the ConfigMap up within moments; until then the pod
	// would be refused as asking for an unknown template. A server-side dry run tells when.
	if err := poll.Until(ctx, pollInterval, time.Minute, "the webhook to know the template", func() error {
		return d.quiet(ctx, "apply", "--dry-run=server", "-f", d.file("api.yaml", sidecarPod))
	}); err != nil {
		return err
	}
	if err := d.sh(ctx, "apply", "-f", d.file("api.yaml", sidecarPod)); err != nil {
		return err
	}
	return d.sh(ctx, "get", "pod", "api", "-n", namespace, "-o",
		`jsonpath={"init containers: "}{.spec.initContainers[*].name}{" (restartPolicy "}{.spec.initContainers[0].restartPolicy}{")\n"}{"containers:      "}{.spec.containers[*].name}{"\n"}{"sidecar.overcommit.dev/status: "}{.metadata.annotations.sidecar\.overcommit\.dev/status}{"\n"}`)
}

// file writes a manifest into the work dir and returns its path.
func (d *demo) file(name, content string) string {
	path := filepath.Join(d.c.WorkDir(), name)
	_ = os.WriteFile(path, []byte(content), 0o600)
	return path
}

func (d *demo) apply(ctx context.Context, name, manifest string) error {
	return d.sh(ctx, "apply", "-f", d.file(name, manifest))
}

// quiet runs kubectl without echoing, for polling.
func (d *demo) quiet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, d.kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.c.Kubeconfig())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (d *demo) waitAllRunning(ctx context.Context) error {
	step("Waiting for the scheduler to place the pending pods")
	if err := poll.Until(ctx, pollInterval, 3*time.Minute, fmt.Sprintf("all %d pods Running", replicas), func() error {
		running, pending, err := d.podCounts(ctx)
		if err != nil {
			return err
		}
		if running != replicas {
			return fmt.Errorf("%d running, %d pending", running, pending)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("All %d pods Running within %s of the status patch.\n\n", replicas, time.Since(d.patchedAt).Round(100*time.Millisecond))
	return d.sh(ctx, "get", "pods", "-n", namespace, "-o", "wide", "--sort-by=.spec.nodeName")
}

func (d *demo) podCounts(ctx context.Context) (running, pending int, err error) {
	pods, err := d.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		switch p.Status.Phase {
		case corev1.PodRunning:
			running++
		case corev1.PodPending:
			pending++
		}
	}
	return running, pending, nil
}

func (d *demo) onePending(ctx context.Context) string {
	pods, err := d.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	if err != nil || len(pods.Items) == 0 {
		return "unknown"
	}
	return pods.Items[0].Name
}

func (d *demo) waitNodeMetrics(ctx context.Context) error {
	mc, err := metricsclient.NewForConfig(d.c.RESTConfig())
	if err != nil {
		return fmt.Errorf("metrics client: %w", err)
	}
	// CPU usage is a rate: metrics-server reports a node after two scrapes, 10 s apart.
	return poll.Until(ctx, pollInterval, 2*time.Minute, "NodeMetrics for every node", func() error {
		list, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) < nodeCount {
			return fmt.Errorf("%d of %d nodes reported", len(list.Items), nodeCount)
		}
		return nil
	})
}

type nodeRow struct {
	name        string
	allocatable resource.Quantity
	pods        int
	requested   resource.Quantity
}

func (d *demo) snapshot(ctx context.Context) (map[string]nodeRow, error) {
	nodes, err := d.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	pods, err := d.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	rows := map[string]nodeRow{}
	for _, n := range nodes.Items {
		rows[n.Name] = nodeRow{name: n.Name, allocatable: n.Status.Allocatable.Cpu().DeepCopy()}
	}
	for _, p := range pods.Items {
		r, ok := rows[p.Spec.NodeName]
		if !ok {
			continue
		}
		r.pods++
		for _, ctr := range p.Spec.Containers {
			r.requested.Add(*ctr.Resources.Requests.Cpu())
		}
		rows[p.Spec.NodeName] = r
	}
	return rows, nil
}

func printTable(before, after map[string]nodeRow) {
	nodes := make([]string, 0, len(after))
	for n := range after {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "NODE\tALLOCATABLE CPU (before → after)\tPODS (before → after)\tCPU REQUESTED (before → after)")
	for _, n := range nodes {
		b, a := before[n], after[n]
		fmt.Fprintf(w, "%s\t%s → %s\t%d → %d\t%s → %s\n", n, b.allocatable.String(), a.allocatable.String(), b.pods, a.pods, b.requested.String(), a.requested.String())
	}
	_ = w.Flush()
}

// sh runs bin/kubectl against the cluster, echoing the command so the output teaches.
func (d *demo) sh(ctx context.Context, args ...string) error {
	fmt.Printf("$ kubectl %s\n", quoteArgs(args))
	cmd := exec.CommandContext(ctx, d.kubectl, args...)
	// bin/ first on PATH: kubectl finds the plugin there as `kubectl overcommit`.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.c.Kubeconfig(), "PATH="+d.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	fmt.Println()
	return nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}\"'$\\") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// pollInterval is how often the demo checks what it waits for: often enough to move on at once,
// rarely enough to keep the log of the apiserver readable.
const pollInterval = 500 * time.Millisecond

func step(s string) {
	fmt.Printf("\n==> %s\n\n", s)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n\n"
}
