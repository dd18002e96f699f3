// Command load drives the overcommit webhook over real TLS on loopback, with keep-alive
// connections as the apiserver holds them, and prints throughput, latency percentiles, errors and
// the webhook's CPU time and memory during the run.
//
// It starts a local control plane (hack/cluster) with the webhook as a process and two sidecar
// templates, then sends node reviews (a 15 KB Node) or pod reviews (a 20 KB pod asking for two
// templates) straight to the webhook's port, flat out or at a fixed rate.
//
//	go run ./hack/load -bin-dir=bin -kind=node               # flat out
//	go run ./hack/load -bin-dir=bin -kind=node -rate=2000     # fixed rate, open loop
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

type options struct {
	binDir   string
	kind     string
	rate     int
	duration time.Duration
	warmup   time.Duration
	conns    int
	profile  string
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", "bin", "directory with the built binaries (make build tools)")
	flag.StringVar(&o.kind, "kind", "node", "review kind: node or pod (comma-separated runs: node,pod)")
	flag.IntVar(&o.rate, "rate", 0, "requests per second, open loop; 0 sends flat out")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each run")
	flag.IntVar(&o.conns, "conns", 8, "keep-alive connections (the apiserver pools connections per webhook)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write the webhook's CPU profile of each measured run to FILE.<kind>.pprof")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	c, err := cluster.Start(ctx, cluster.Options{BinDir: o.binDir, Log: os.Stderr,
		Webhook: &cluster.WebhookOptions{Pods: true, Args: []string{"--log-level=warn"}, Pprof: true}})
	if err != nil {
		return err
	}
	defer c.Stop()
	if err := createTemplates(ctx, c); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CA())
	tlsConfig := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	addr := fmt.Sprintf("127.0.0.1:%d", c.WebhookPort())
	base := "https://" + addr

	for _, kind := range strings.Split(o.kind, ",") {
		var body []byte
		var path string
		switch kind {
		case "node":
			body, err = fixtures.NodeReview("worker-1", "system:node:worker-1")
			path = "/mutate-node"
		case "pod":
			body, err = fixtures.PodReview("load")
			path = "/mutate-pod"
		default:
			return fmt.Errorf("-kind %q: want node or pod", kind)
		}
		if err != nil {
			return err
		}
		if err := check(ctx, client, base+path, body); err != nil {
			return fmt.Errorf("%s review: %w", kind, err)
		}
		pid := c.WebhookPID()
		conns, err := dialAll(ctx, o.conns, addr, tlsConfig, path, body)
		if err != nil {
			return err
		}
		drive(ctx, conns, o, o.warmup, 0) // warm-up: caches, GC steady state
		before, err := cluster.ReadProcessStats(pid)
		if err != nil {
			return err
		}
		self, err := cluster.ReadProcessStats(os.Getpid())
		if err != nil {
			return err
		}
		var profile chan error
		if o.profile != "" {
			profile = make(chan error, 1)
			go func() {
				profile <- c.SaveWebhookProfile(ctx, fmt.Sprintf("profile?seconds=%d", int(o.duration.Seconds())), o.profile+"."+kind+".pprof")
			}()
		}
		res := drive(ctx, conns, o, o.duration, pid)
		if profile != nil {
			if err := <-profile; err != nil {
				return err
			}
		}
		after, err := cluster.ReadProcessStats(pid)
		if err != nil {
			return err
		}
		selfAfter, err := cluster.ReadProcessStats(os.Getpid())
		if err != nil {
			return err
		}
		for _, c := range conns {
			c.close()
		}
		res.print(os.Stdout, kind, o, len(body), before, after, selfAfter.CPU-self.CPU)
	}
	return nil
}

// createTemplates stores the fixture templates where the webhook's informer finds them and
// waits until the webhook injects with them.
func createTemplates(ctx context.Context, c *cluster.Cluster) error {
	for name, body := range fixtures.SidecarTemplates() {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.WebhookNamespace, Labels: map[string]string{names.SidecarTemplateLabel: "true"}},
			Data:       map[string]string{sidecar.DataKey: body},
		}
		if _, err := c.Client().CoreV1().ConfigMaps(cluster.WebhookNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating template %s: %w", name, err)
		}
	}
	return nil
}

// check sends one review and insists on a patched answer (waiting for the template informer).
func check(ctx context.Context, client *http.Client, url string, body []byte) error {
	return poll.Until(ctx, 200*time.Millisecond, 30*time.Second, "a patched review", func() error {
		out, err := post(ctx, client, url, body)
		if err != nil {
			return err
		}
		if !bytes.Contains(out, []byte(`"patchType":"JSONPatch"`)) {
			return fmt.Errorf("no patch in %s", out)
		}
		return nil
	})
}

func post(ctx context.Context, client *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out, nil
}

type result struct {
	latencies []time.Duration
	errors    int64
	elapsed   time.Duration
	firstErr  error
	peakRSS   atomic.Int64
	// lateness is how late the pacer released each request against the ideal schedule.
	lateness []time.Duration
}

// drive sends reviews for d over the connections, one request at a time on each: flat out, or
// at o.rate per second, open loop: latency runs from the moment the pacer releases a request, so
// a stalled server is charged for the requests queued behind it (no coordinated omission).
//
// It runs from the release, not from the ideal schedule, because the pacer's own sleeps are
// coarse: the Go runtime rounds a sleep shorter than a millisecond up to one when the process is
// idle, so at 2,000/s the pacer wakes up to a millisecond late and releases what is due in a
// burst. That lateness is the generator's, not the webhook's; it is printed separately.
func drive(ctx context.Context, conns []*conn, o options, d time.Duration, pid int) *result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := &result{}
	var mu sync.Mutex
	record := func(lat []time.Duration, errs int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.latencies = append(res.latencies, lat...)
		res.errors += errs
		if err != nil && res.firstErr == nil {
			res.firstErr = err
		}
	}
	done := make(chan struct{})
	if pid > 0 {
		go func() { // sample peak RSS during the run
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if p, err := cluster.ReadProcessStats(pid); err == nil && p.RSS > res.peakRSS.Load() {
						res.peakRSS.Store(p.RSS)
					}
				}
			}
		}()
	}
	var jobs chan time.Time
	if o.rate > 0 {
		jobs = make(chan time.Time, o.rate)
	}
	var lateness []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			// Each worker keeps its own latencies and hands them over once: no lock per request.
			lat := make([]time.Duration, 0, 1<<14)
			var errs int64
			var firstErr error
			send := func(from time.Time) {
				out, err := c.do(10 * time.Second)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					if rerr := c.redial(ctx); rerr != nil {
						err = fmt.Errorf("%w (and reconnecting: %v)", err, rerr)
					}
				} else if !bytes.Contains(out, []byte(`"allowed":true`)) {
					err = fmt.Errorf("not allowed: %s", out)
				}
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				lat = append(lat, time.Since(from))
			}
			if jobs == nil {
				for ctx.Err() == nil {
					send(time.Now())
				}
			} else {
				for scheduled := range jobs {
					if ctx.Err() == nil { // drain what is queued at the end without sending it
						send(scheduled)
					}
				}
			}
			record(lat, errs, firstErr)
		})
	}
	if jobs != nil {
		interval := time.Second / time.Duration(o.rate)
		next := time.Now().Add(interval)
		timer := time.NewTimer(interval)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
			now := time.Now()
			for ; !next.After(now); next = next.Add(interval) {
				lateness = append(lateness, now.Sub(next))
				select {
				case jobs <- now:
				case <-ctx.Done():
					break loop
				}
			}
			timer.Reset(time.Until(next))
		}
		timer.Stop()
		close(jobs)
	}
	wg.Wait()
	close(done)
	res.elapsed = time.Since(start)
	res.lateness = lateness
	return res
}

func (r *result) print(w io.Writer, kind string, o options, size int, before, after cluster.ProcessStats, selfCPU time.Duration) {
	slices.Sort(r.latencies)
	n := len(r.latencies)
	pct := func(p float64) time.Duration { return percentile(r.latencies, p) }
	mode := "flat out"
	if o.rate > 0 {
		mode = fmt.Sprintf("at %d/s", o.rate)
	}
	cpu := after.CPU - before.CPU
	fmt.Fprintf(w, "%s reviews (%d bytes), %s, %d connections, %s:\n", kind, size, mode, o.conns, r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  throughput  %.0f/s (%d ok, %d errors)\n", float64(n)/r.elapsed.Seconds(), n, r.errors)
	fmt.Fprintf(w, "  latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", pct(50), pct(90), pct(99), pct(99.9), pct(100))
	if len(r.lateness) > 0 {
		slices.Sort(r.lateness)
		fmt.Fprintf(w, "  pacer       released late by p50 %s  p99 %s (the generator's timer, not in the latency above)\n",
			percentile(r.lateness, 50), percentile(r.lateness, 99))
	}
	fmt.Fprintf(w, "  webhook     cpu %.2f cores (%.1f µs per review), rss %.1f MiB (peak %.1f MiB)\n",
		cpu.Seconds()/r.elapsed.Seconds(), float64(cpu.Microseconds())/float64(max(n, 1)), float64(after.RSS)/(1<<20), float64(max(r.peakRSS.Load(), after.RSS))/(1<<20))
	fmt.Fprintf(w, "  load gen    cpu %.2f cores (%.1f µs per review)\n",
		selfCPU.Seconds()/r.elapsed.Seconds(), float64(selfCPU.Microseconds())/float64(max(n, 1)))
	if r.firstErr != nil {
		fmt.Fprintf(w, "  first error %v\n", r.firstErr)
	}
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p/100+0.5) - 1
	return sorted[min(max(i, 0), n-1)]
}
