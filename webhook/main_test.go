package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/webhook/certs"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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

// TestServer runs the real binary's run(): TLS >= 1.2 without HTTP/2, a serving cert that is
// replaced on disk and picked up without a restart, probes and metrics — with no cluster at all.
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
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort), "--log-level=error"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // no in-cluster config: static must still work
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
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
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Node"},"name":"n",` +
		`"object":{"metadata":{"name":"n","labels":{"overcommit.dev/enabled":"true"},"annotations":{"overcommit.dev/cpu-ratio":"2"}},"status":{"allocatable":{"cpu":"3900m"},"capacity":{"cpu":"4"}}}}}`
	resp, err := client.Post("https://"+addr+"/mutate-node", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"patchType":"JSONPatch"`)) {
		t.Fatalf("HTTP %d %s", resp.StatusCode, out)
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

	metrics, err := fetch(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`overcommit_webhook_requests_total{outcome="patched",webhook="node"} 1`,
		"overcommit_webhook_request_duration_seconds_bucket", `overcommit_node_patches_total{policy="static"} 1`, "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--max-cpu-ratio=3", "--default-cpu-ratio=2"}},
		{args: []string{"--default-cpu-ratio=5"}, wantErr: "default cpu ratio 5 must be between 1 and the max 4"},
		{args: []string{"--max-memory-ratio=0.5"}, wantErr: "max memory ratio 0.5 must be between 1 and 100"},
		{args: []string{"--default-cpu-ratio=abc"}, wantErr: `invalid ratio "abc"`},
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
