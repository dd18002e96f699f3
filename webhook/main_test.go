package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"github.com/overcommit-dev/overcommit/internal/freeport"
	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/certs"
)

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func issue(t *testing.T, ca *certs.CA, dir string) *certs.KeyPair {
	t.Helper()
	kp, err := ca.IssueServing("overcommit-webhook", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestServer runs the real binary's serve(): TLS >= 1.2 without HTTP/2, a serving cert that is
// replaced on disk and picked up without a restart, the settings ConfigMap followed as it
// changes, probes and metrics — against fake API clients.
func TestServer(t *testing.T) {
	ca, err := certs.NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := issue(t, ca, dir)
	port, probePort, metricsPort := freePort(t), freePort(t), freePort(t)
	o, err := parseOptions([]string{"--host=127.0.0.1", fmt.Sprintf("--port=%d", port), "--cert-dir=" + dir,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort), "--log-level=error", "--namespace=ns", "--settings-configmap=s"})
	if err != nil {
		t.Fatal(err)
	}
	// At most x1.5: the node's annotation asks for x2.
	limited := policy.DefaultSettings()
	limited.CPU.Max = policy.MustParseRatio("1.5")
	kube := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: limited.Data()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, o, o.logger(), &clients{kube: kube, metrics: metricsfake.NewSimpleClientset()})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	probe := fmt.Sprintf("http://127.0.0.1:%d", probePort)
	waitFor(t, func() error { return get(probe + "/readyz") })
	if err := get(probe + "/healthz"); err != nil {
		t.Errorf("healthz: %v", err)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}, ForceAttemptHTTP2: true}}
	resp, review := postNode(t, client, addr)
	if review.PatchType == nil || !strings.Contains(string(review.Patch), `"value":"5850m"`) {
		t.Fatalf("want a patch to cpu 5850m (x1.5, the ConfigMap's max): %s", review.Patch)
	}
	if resp.ProtoMajor != 1 {
		t.Errorf("negotiated %s; HTTP/2 should be off by default", resp.Proto)
	}

	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Errorf("TLS 1.1 handshake succeeded")
	}

	// Replace the certificate on disk: new handshakes get the new one.
	second := issue(t, ca, dir)
	if certs.SameCert(first.CertPEM, second.CertPEM) {
		t.Fatal("issued the same certificate twice")
	}
	waitFor(t, func() error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			return err
		}
		defer c.Close()
		served := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ConnectionState().PeerCertificates[0].Raw})
		if !certs.SameCert(served, second.CertPEM) {
			return fmt.Errorf("still serving the old certificate")
		}
		return nil
	})

	// Counted before the ConfigMap goes: reviews sent while the informer has not yet seen the
	// deletion are still patched.
	checkMetrics(t, metricsPort, `overcommit_webhook_requests_total{outcome="patched",webhook="node"} 1`,
		"overcommit_webhook_request_duration_seconds_bucket", `overcommit_node_patches_total{policy="static"} 1`, "process_resident_memory_bytes",
		"overcommit_usage_history_nodes ", "overcommit_usage_history_nodes_warming_up ", "overcommit_usage_history_samples ",
		"overcommit_webhook_serving_certificate_expiry_timestamp_seconds ")

	// Without the ConfigMap, nodes are left unchanged, as in policy mode.
	if err := kube.CoreV1().ConfigMaps("ns").Delete(context.Background(), "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		_, review := postNode(t, client, addr)
		if len(review.Patch) != 0 || !slices.Equal(review.Warnings, []string{"overcommit: settings ConfigMap ns/s not found; node left unchanged"}) {
			return fmt.Errorf("patch %s, warnings %q", review.Patch, review.Warnings)
		}
		return nil
	})
	checkMetrics(t, metricsPort, `overcommit_settings{state="missing"} 1`, `overcommit_node_settings_problems_total{state="missing"} 1`)
}

func checkMetrics(t *testing.T, port int, want ...string) {
	t.Helper()
	metrics, err := fetch(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// TestServerWithoutCluster runs the real binary's run() with no cluster at all: it serves, and
// leaves opted-in nodes unchanged since it cannot read its settings.
func TestServerWithoutCluster(t *testing.T) {
	ca, port, _ := runWithoutCluster(t, "--metrics-bind-address=0")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	_, review := postNode(t, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, fmt.Sprintf("127.0.0.1:%d", port))
	want := []string{"overcommit: the webhook has no cluster connection to read the settings ConfigMap " + names.Namespace + "/" + names.SettingsConfigMap + "; node left unchanged"}
	if len(review.Patch) != 0 || !slices.Equal(review.Warnings, want) {
		t.Errorf("patch %s, warnings %q; want no patch and %q", review.Patch, review.Warnings, want)
	}
}

// postNode sends the review of an opted-in node that asks for cpu x2 and returns the response.
func postNode(t *testing.T, client *http.Client, addr string) (*http.Response, *admissionv1.AdmissionResponse) {
	t.Helper()
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Node"},"name":"n",` +
		`"object":{"metadata":{"name":"n","labels":{"overcommit.dev/enabled":"true"},"annotations":{"overcommit.dev/cpu-ratio":"2"}},"status":{"allocatable":{"cpu":"3900m"},"capacity":{"cpu":"4"}}}}}`
	resp, err := client.Post("https://"+addr+"/mutate-node", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var review admissionv1.AdmissionReview
	if resp.StatusCode != 200 || json.Unmarshal(out, &review) != nil || review.Response == nil || !review.Response.Allowed {
		t.Fatalf("HTTP %d %s", resp.StatusCode, out)
	}
	return resp, review.Response
}

func get(url string) error {
	_, err := fetch(url)
	return err
}

func fetch(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: HTTP %d %s", url, resp.StatusCode, b)
	}
	return string(b), err
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), 100*time.Millisecond, 20*time.Second, "the webhook", f); err != nil {
		t.Fatal(err)
	}
}

// runWithoutCluster runs the real binary's run() with no cluster connection until the test
// ends: on 127.0.0.1, serving a certificate of a new CA, with the flags given besides. It
// returns once /readyz answers.
func runWithoutCluster(t *testing.T, flags ...string) (ca *certs.CA, port, probePort int) {
	t.Helper()
	ca, err := certs.NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issue(t, ca, dir)
	port, probePort = freePort(t), freePort(t)
	o, err := parseOptions(append([]string{"--host=127.0.0.1", fmt.Sprintf("--port=%d", port), "--cert-dir=" + dir,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort), "--log-level=error"}, flags...))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // no in-cluster config
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	waitFor(t, func() error { return get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)) })
	return ca, port, probePort
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--settings-configmap=other"}},
		{args: []string{"--settings-configmap="}, wantErr: "--settings-configmap must not be empty"},
		// The settings live in the ConfigMap only.
		{args: []string{"--max-cpu-ratio=3"}, wantErr: "unknown flag: --max-cpu-ratio"},
		{args: []string{"--metrics-max-age=40s"}, wantErr: "unknown flag: --metrics-max-age"},
		{args: []string{"--port=0"}, wantErr: "--port 0 out of range"},
		{args: []string{"--log-format=xml"}, wantErr: "want json or text"},
		{args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseOptions(tt.args)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestUsageFlags: each usage-window flag's default (history.DefaultConfig, which says why), its
// way into history.Config, and its rejected values, worded as every rejected flag value is.
func TestUsageFlags(t *testing.T) {
	def := history.DefaultConfig()
	with := func(f func(*history.Config)) history.Config {
		c := def
		f(&c)
		return c
	}
	tests := []struct {
		args    []string
		want    history.Config
		wantErr string
	}{
		{args: nil, want: def},
		{args: []string{"--usage-window=2h"}, want: with(func(c *history.Config) { c.Window = 2 * time.Hour })},
		{args: []string{"--usage-min-window=0"}, want: with(func(c *history.Config) { c.MinWindow = 0 })},
		{args: []string{"--usage-cpu-percentile=99"}, want: with(func(c *history.Config) { c.CPUPercentile = 99 })},
		{args: []string{"--usage-memory-percentile=90"}, want: with(func(c *history.Config) { c.MemoryPercentile = 90 })},
		{args: []string{"--usage-raise-after=0"}, want: with(func(c *history.Config) { c.RaiseAfter = 0 })},
		{args: []string{"--usage-raise-step-cpu=0.5"}, want: with(func(c *history.Config) { c.CPUStep = 500 })},
		{args: []string{"--usage-raise-step-memory=1Gi"}, want: with(func(c *history.Config) { c.MemoryStep = 1 << 30 })},
		{args: []string{"--usage-window=30s"}, wantErr: `invalid --usage-window "30s": must be 1m to 24h`},
		{args: []string{"--usage-window=25h"}, wantErr: `invalid --usage-window "25h0m0s": must be 1m to 24h`},
		{args: []string{"--usage-min-window=31m"}, wantErr: `invalid --usage-min-window "31m0s": must be 0 to half of --usage-window (30m0s)`},
		// A shorter window than the default minimum's double: the minimum is what must change.
		{args: []string{"--usage-window=10m"}, wantErr: `invalid --usage-min-window "10m0s": must be 0 to half of --usage-window (5m0s)`},
		{args: []string{"--usage-window=10m", "--usage-min-window=5m"}, want: with(func(c *history.Config) { c.Window, c.MinWindow = 10*time.Minute, 5*time.Minute })},
		{args: []string{"--usage-cpu-percentile=0"}, wantErr: `invalid --usage-cpu-percentile "0": must be 1 to 100`},
		{args: []string{"--usage-memory-percentile=101"}, wantErr: `invalid --usage-memory-percentile "101": must be 1 to 100`},
		{args: []string{"--usage-raise-after=-1s"}, wantErr: `invalid --usage-raise-after "-1s": must be 0 to 24h`},
		{args: []string{"--usage-raise-step-cpu=-1"}, wantErr: `invalid --usage-raise-step-cpu "-1": must not be negative`},
		{args: []string{"--usage-raise-step-memory=-1Gi"}, wantErr: `invalid --usage-raise-step-memory "-1Gi": must not be negative`},
		{args: []string{"--usage-raise-step-memory=lots"}, wantErr: `invalid argument "lots" for "--usage-raise-step-memory" flag: want a quantity`},
		// Hysteresis lives in the usage window now, for both modes.
		{args: []string{"--usage-target-min-raise-interval=1m"}, wantErr: "unknown flag: --usage-target-min-raise-interval"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseOptions(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, o.history); diff != "" {
				t.Errorf("history config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadKubeconfig(t *testing.T) {
	o, err := parseOptions([]string{"--kubeconfig=/nonexistent/kubeconfig"})
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "loading --kubeconfig /nonexistent/kubeconfig") {
		t.Errorf("run = %v, want a clear kubeconfig error", err)
	}
}
