// Command scale measures overcommit at Kubernetes' scalability envelope on the local control
// plane: 5,000 nodes and 150,000 pods in a real kube-apiserver.
//
//   - the webhook: time from start to a synced pod cache, and its memory holding all of it;
//
//   - the plugin: `kubectl overcommit savings` over everything, with and without --pods in each
//     output format, `check` of every opted-in node (wall time, peak RSS), and `preview` of
//     one node;
//
//   - the write cost: status writes per minute of a real kubelet (kubemark) on an opted-in node
//     versus one that is not opted in, counted in the apiserver's audit log.
//
//     go run ./hack/scale -bin-dir=bin [-nodes=5000 -pods=150000]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/shared/names"
)

type options struct {
	binDir    string
	nodes     int
	pods      int
	workers   int
	writeCost time.Duration
	skipScale bool
	lock      string
	keep      bool
	pprof     bool
	heapProf  string
	mode      string
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", "bin", "directory with the built binaries (make build tools)")
	flag.IntVar(&o.nodes, "nodes", 5000, "nodes to create")
	flag.IntVar(&o.pods, "pods", 150000, "pods to create, spread evenly over the nodes")
	flag.IntVar(&o.workers, "workers", 32, "parallel creates while populating")
	flag.DurationVar(&o.writeCost, "write-cost", 2*time.Minute, "how long to count kubelet status writes; 0 skips")
	flag.BoolVar(&o.skipScale, "skip-scale", false, "only measure the write cost")
	flag.StringVar(&o.lock, "lock", "", "file to hold an exclusive flock on while measuring (released before -keep waits)")
	flag.BoolVar(&o.keep, "keep", false, "keep the cluster running after measuring, until interrupted")
	flag.BoolVar(&o.pprof, "webhook-pprof", false, "serve the webhook's Go profiles (--pprof-bind-address on a loopback port of their own)")
	flag.StringVar(&o.mode, "mode", deploy.ModeWebhook, "node-policy mode: webhook, or policy (the MutatingAdmissionPolicy)")
	flag.StringVar(&o.heapProf, "heap-profile", "", "write the webhook's heap profile here after the memory figure (implies -webhook-pprof)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	bin, err := filepath.Abs(o.binDir)
	if err != nil {
		return err
	}
	o.binDir = bin
	unlock, err := lock(o.lock)
	if err != nil {
		return err
	}
	defer unlock()
	webhookArgs := []string{"--log-level=warn"}
	// The environment the Deployment gives the webhook (MEMORY_LIMIT from its memory limit, of
	// which the webhook takes 90% as its Go memory limit), so the memory figure is what a
	// deployed replica shows.
	env, err := deploymentEnv()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "webhook environment from deploy/base: %s\n", strings.Join(env, " "))
	if o.mode != deploy.ModeWebhook && o.mode != deploy.ModePolicy {
		return fmt.Errorf("-mode %q: want %s or %s", o.mode, deploy.ModeWebhook, deploy.ModePolicy)
	}
	c, err := cluster.Start(ctx, cluster.Options{BinDir: bin, Log: os.Stderr,
		Webhook: &cluster.WebhookOptions{Args: webhookArgs, Env: env, Pprof: o.pprof || o.heapProf != ""}, NodePolicy: o.mode == deploy.ModePolicy})
	if err != nil {
		return err
	}
	defer c.Stop()
	if o.keep {
		defer func() {
			unlock()
			fmt.Fprintf(os.Stderr, "keeping the cluster until interrupted: kubeconfig %s, webhook metrics on %s, pprof on %q\n", c.Kubeconfig(), c.WebhookMetricsAddr(), c.WebhookPprofAddr())
			<-ctx.Done()
		}()
	}
	if err := c.InstallWebhookConfiguration(ctx); err != nil {
		return err
	}
	if !o.skipScale {
		if err := measureScale(ctx, c, o); err != nil {
			return err
		}
	}
	if o.writeCost > 0 {
		if err := measureWriteCost(ctx, c, o.writeCost); err != nil {
			return err
		}
	}
	return apiserverLatency(ctx, c)
}

// deploymentEnv returns the webhook container's environment from deploy/base with the values the
// kubelet would give it: resourceFieldRef values resolved against the container's own resources
// (rounded up, as the downward API does). Variables from fieldRef (the pod's namespace) are left
// out: the local webhook runs without them.
func deploymentEnv() ([]string, error) {
	raw, err := deploy.Render("base", deploy.ModeWebhook, "")
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		if !strings.Contains(doc, "kind: Deployment") {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("decoding the Deployment: %w", err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			var env []string
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
					env = append(env, e.Name+"="+e.Value)
				case e.ValueFrom.ResourceFieldRef != nil:
					ref := e.ValueFrom.ResourceFieldRef
					res, ok := strings.CutPrefix(ref.Resource, "limits.")
					q, found := c.Resources.Limits[corev1.ResourceName(res)]
					if !ok || !found {
						return nil, fmt.Errorf("env %s: %s is not a limit the container sets", e.Name, ref.Resource)
					}
					div := int64(1)
					if !ref.Divisor.IsZero() {
						div = ref.Divisor.Value()
					}
					env = append(env, fmt.Sprintf("%s=%d", e.Name, (q.Value()+div-1)/div))
				}
			}
			return env, nil
		}
	}
	return nil, fmt.Errorf("no Deployment with a container in deploy/base")
}

// lock takes an exclusive flock on path (nothing when empty), so heavy measurements on a shared
// machine do not overlap; the returned func releases it and may be called more than once.
func lock(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}

// apiserverLatency prints the apiserver's own view of the node policy's latency, in whichever
// mode runs: the apiserver_admission_webhook_admission_duration_seconds histogram of our webhooks
// (lowest bucket 5 ms), and the apiserver_mutating_admission_policy_check_duration_seconds
// histogram of the MutatingAdmissionPolicy.
func apiserverLatency(ctx context.Context, c *cluster.Cluster) error {
	raw, err := c.Client().CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading apiserver metrics: %w", err)
	}
	printHistograms(string(raw), "apiserver_admission_webhook_admission_duration_seconds",
		"the apiserver's view, including TLS and the network hop", func(l string) (string, bool) {
			name := between(l, `name="`, `"`)
			if !strings.HasSuffix(name, ".overcommit.dev") || !strings.Contains(l, `rejected="false"`) {
				return "", false
			}
			return name + " " + between(l, `operation="`, `"`), true
		})
	printHistograms(string(raw), "apiserver_mutating_admission_policy_check_duration_seconds",
		"CEL evaluated inside the apiserver", func(l string) (string, bool) {
			if between(l, `policy="`, `"`) != names.NodePolicyName {
				return "", false
			}
			return names.NodePolicyName + " " + between(l, `error_type="`, `"`), true
		})
	return nil
}

// printHistograms summarises the buckets of one histogram family, one line per key that key
// returns for a bucket line (false skips the line).
func printHistograms(metrics, family, what string, key func(line string) (string, bool)) {
	type hist struct {
		buckets []string
		counts  []float64
	}
	hs := map[string]*hist{}
	var keys []string
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, family+"_bucket{") {
			continue
		}
		k, ok := key(l)
		if !ok {
			continue
		}
		h := hs[k]
		if h == nil {
			h = &hist{}
			hs[k] = h
			keys = append(keys, k)
		}
		var v float64
		fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
		h.buckets = append(h.buckets, between(l, `le="`, `"`))
		h.counts = append(h.counts, v)
	}
	if len(keys) == 0 {
		return
	}
	fmt.Printf("%s (%s):\n", family, what)
	sort.Strings(keys)
	for _, k := range keys {
		h := hs[k]
		total := h.counts[len(h.counts)-1]
		p50, p99 := "+Inf", "+Inf"
		for i := len(h.counts) - 1; i >= 0; i-- {
			if h.counts[i] >= 0.99*total {
				p99 = h.buckets[i]
			}
			if h.counts[i] >= 0.5*total {
				p50 = h.buckets[i]
			}
		}
		fmt.Printf("  %-40s %6.0f calls, p50 bucket le=%s, p99 bucket le=%s\n", k, total, p50, p99)
		// The cumulative counts where they grow, so that a single slow call shows as one.
		var steps []string
		prev := 0.0
		for i, c := range h.counts {
			if c > prev {
				steps = append(steps, fmt.Sprintf("le=%s:%.0f", h.buckets[i], c))
				prev = c
			}
		}
		fmt.Printf("  %-40s %s\n", "", strings.Join(steps, " "))
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

func fastClient(c *cluster.Cluster) (kubernetes.Interface, error) {
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 10000
	return kubernetes.NewForConfig(cfg)
}

func measureScale(ctx context.Context, c *cluster.Cluster, o options) error {
	cs, err := fastClient(c)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := populate(ctx, cs, o); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "populated %d nodes and %d pods in %s\n", o.nodes, o.pods, time.Since(start).Round(time.Second))

	// The webhook restarts against the full cluster: time to a synced pod cache, then memory.
	if err := c.StopWebhook(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.StartWebhook(ctx); err != nil {
		return err
	}
	ready := time.Since(t0)
	// Count the pods in the cache rather than trusting the synced flag alone: the number is what
	// the memory figure below is about.
	if err := poll.Until(ctx, 100*time.Millisecond, 5*time.Minute, "the pod cache synced", func() error {
		m, err := c.WebhookMetrics(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(m, "overcommit_usage_pod_cache_synced 1") ||
			!strings.Contains(m, fmt.Sprintf("overcommit_usage_pod_cache_pods %d\n", o.pods)) {
			return errors.New("not synced, or not every pod in it")
		}
		return nil
	}); err != nil {
		return err
	}
	synced := time.Since(t0)
	time.Sleep(5 * time.Second) // let the heap settle after the initial list
	mem, err := cluster.ReadProcessStats(c.WebhookPID())
	if err != nil {
		return err
	}
	if o.heapProf != "" {
		if err := c.SaveWebhookProfile(ctx, "heap?gc=1", o.heapProf); err != nil {
			return err
		}
	}
	m, _ := c.WebhookMetrics(ctx)
	fmt.Printf("webhook with %d nodes and %d pods:\n", o.nodes, o.pods)
	fmt.Printf("  serving (readyz) after %s, pod cache synced after %s (%s)\n", ready.Round(time.Millisecond), synced.Round(time.Millisecond), metricLine(m, "overcommit_usage_pod_cache_pods"))
	fmt.Printf("  rss %.1f MiB (peak %.1f MiB)\n", float64(mem.RSS)/(1<<20), float64(mem.PeakRSS)/(1<<20))

	if err := reportWrites(ctx, c, 10*time.Second); err != nil {
		return err
	}
	plugin := filepath.Join(o.binDir, "kubectl-overcommit")
	for _, m := range pluginMeasurements {
		wall, maxRSS, failed, err := timeCommand(ctx, m.checkFailures, plugin, append(m.args, "--kubeconfig="+c.Kubeconfig())...)
		if err != nil {
			return err
		}
		fmt.Printf("kubectl overcommit %-40s wall %6s  peak rss %.1f MiB  (load %s)%s\n", strings.Join(m.args, " "),
			wall.Round(time.Millisecond), float64(maxRSS)/(1<<20), loadAverage(), failed)
	}
	return nil
}

// pluginMeasurement is one plugin command measured against the full cluster.
type pluginMeasurement struct {
	args []string
	// checkFailures: the command reports what it finds wrong with a non-zero exit (check), which
	// is the cluster's state rather than a failed measurement; its last line of stderr is shown.
	checkFailures bool
}

// pluginMeasurements are the commands timed at full scale, each once, in this order. savings
// --pods prints a row (or list element) per pod, 150,000 of them, in each format.
var pluginMeasurements = []pluginMeasurement{
	{args: []string{"savings"}},
	{args: []string{"savings", "-o", "json"}},
	{args: []string{"savings", "--pods"}},
	{args: []string{"savings", "--pods", "-o", "json"}},
	{args: []string{"savings", "--pods", "-o", "yaml"}},
	{args: []string{"preview", "scale-node-00042"}},
	{args: []string{"preview", "scale-node-00042", "--cpu-ratio", "3"}},
	// check reads the install and every opted-in node with its pods (a tenth of the nodes here).
	{args: []string{"check"}, checkFailures: true},
}

// loadAverage is the 1-minute load average, to read a figure against: the machine may be shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// reportWrites prints the apiserver's write rate (everything but get, list and watch, by
// resource) over window: whether controllers are still busy with the cluster while it is measured.
func reportWrites(ctx context.Context, c *cluster.Cluster, window time.Duration) error {
	before, err := apiserverWrites(ctx, c)
	if err != nil {
		return err
	}
	time.Sleep(window)
	after, err := apiserverWrites(ctx, c)
	if err != nil {
		return err
	}
	var parts []string
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f/s", k, d/window.Seconds()))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Printf("apiserver writes over %s before the plugin runs: %s\n", window, strings.Join(parts, ", "))
	return nil
}

// apiserverWrites sums apiserver_request_total for write verbs by resource (and subresource).
func apiserverWrites(ctx context.Context, c *cluster.Cluster) (map[string]float64, error) {
	raw, err := c.Client().CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading apiserver metrics: %w", err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "apiserver_request_total{") {
			continue
		}
		switch between(l, `verb="`, `"`) {
		case "GET", "LIST", "WATCH", "WATCHLIST":
			continue
		}
		key := between(l, `verb="`, `"`) + " " + between(l, `resource="`, `"`)
		if sub := between(l, `subresource="`, `"`); sub != "" && strings.Contains(l, `subresource="`) {
			key += "/" + sub
		}
		var v float64
		fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
		out[key] += v
	}
	return out, nil
}

func metricLine(metrics, name string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return name + " missing"
}

// populate creates the nodes (a tenth of them opted in at x2) and the pods, bound round-robin.
func populate(ctx context.Context, cs kubernetes.Interface, o options) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	err := parallel(ctx, o.workers, o.nodes, func(i int) error {
		n := cluster.KwokNode(nodeName(i), "32", "128Gi")
		delete(n.Annotations, cluster.KwokNodeAnnotation) // no kwok here: nothing heartbeats
		if i%10 == 0 {
			n.Labels[names.EnabledLabel] = names.EnabledValue
			n.Annotations[names.CPURatioAnnotation] = "2"
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating nodes: %w", err)
	}
	fmt.Fprintf(os.Stderr, "created %d nodes\n", o.nodes)
	return parallel(ctx, o.workers, o.pods, func(i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-pod-%06d", i), Namespace: "scale",
				Labels: map[string]string{"app": fmt.Sprintf("app-%03d", i%500)}},
			Spec: corev1.PodSpec{
				NodeName: nodeName(i % o.nodes),
				Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")}}}},
			},
		}
		_, err := cs.CoreV1().Pods("scale").Create(ctx, p, metav1.CreateOptions{})
		if err == nil && i > 0 && i%25000 == 0 {
			fmt.Fprintf(os.Stderr, "created %d pods\n", i)
		}
		return err
	})
}

func nodeName(i int) string { return fmt.Sprintf("scale-node-%05d", i) }

func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	jobs := make(chan int)
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := range jobs {
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil && firstErr == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// timeCommand runs a command, its output discarded, and returns its wall time and peak RSS (from
// rusage). With checkFailures a non-zero exit is not an error: failed says so, with the last
// line of stderr.
func timeCommand(ctx context.Context, checkFailures bool, name string, args ...string) (wall time.Duration, maxRSS int64, failed string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = nil
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	var exit *exec.ExitError
	switch {
	case err != nil && checkFailures && errors.As(err, &exit):
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		failed = fmt.Sprintf("  exit %d: %s", exit.ExitCode(), lines[len(lines)-1])
	case err != nil:
		return 0, 0, "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return wall, 0, failed, nil
	}
	return wall, ru.Maxrss * 1024, failed, nil // Linux reports KiB
}

// measureWriteCost runs two real kubelets (kubemark), opts one in, and counts each one's own
// nodes/status writes in the audit log over the window.
func measureWriteCost(ctx context.Context, c *cluster.Cluster, window time.Duration) error {
	for _, name := range []string{"cost-plain", "cost-opted"} {
		if _, err := c.StartKubelet(ctx, name); err != nil {
			return err
		}
	}
	cs := c.Client()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"},"annotations":{%q:"2"}}}`, names.EnabledLabel, names.CPURatioAnnotation)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "cost-opted", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "cost-opted", "application/merge-patch+json", []byte(`{"status":{}}`), metav1.PatchOptions{}, "status"); err != nil {
		return err
	}
	time.Sleep(15 * time.Second) // past the first re-send
	from := time.Now()
	fmt.Fprintf(os.Stderr, "counting kubelet status writes for %s\n", window)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window):
	}
	to := time.Now()
	counts, err := countStatusWrites(c.AuditLogFile(), from, to)
	if err != nil {
		return err
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, "cost-opted", metav1.GetOptions{})
	if err != nil {
		return err
	}
	minutes := to.Sub(from).Minutes()
	fmt.Printf("kubelet status writes over %s (real kubelet code, kubemark):\n", to.Sub(from).Round(time.Second))
	fmt.Printf("  not opted in: %d (%.1f per minute)\n", counts["cost-plain"], float64(counts["cost-plain"])/minutes)
	fmt.Printf("  opted in:     %d (%.1f per minute), allocatable cpu %s\n", counts["cost-opted"], float64(counts["cost-opted"])/minutes, node.Status.Allocatable.Cpu())
	return nil
}

type auditEvent struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	Stage                    string      `json:"stage"`
	RequestReceivedTimestamp metav1.Time `json:"requestReceivedTimestamp"`
}

// countStatusWrites counts, per node, the nodes/status writes its own kubelet made in [from, to).
func countStatusWrites(path string, from, to time.Time) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Stage != "ResponseComplete" {
			continue
		}
		t := ev.RequestReceivedTimestamp.Time
		if ev.ObjectRef.Resource != "nodes" || ev.ObjectRef.Subresource != "status" || t.Before(from) || !t.Before(to) {
			continue
		}
		if ev.User.Username == names.KubeletUser(ev.ObjectRef.Name) && (ev.Verb == "patch" || ev.Verb == "update") {
			counts[ev.ObjectRef.Name]++
		}
	}
	return counts, sc.Err()
}
