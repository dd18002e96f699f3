package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shape of kwok v0.8.0's kustomize/stage/node/heartbeat/node-heartbeat.yaml around the delay.
const heartbeatYAML = `kind: Stage
spec:
  delay:
    durationMilliseconds: 20000
    jitterDurationMilliseconds: 25000
  next:
    statusTemplate: |
      conditions: []
`

func TestHeartbeatStage(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.yaml"), filepath.Join(dir, "out.yaml")
	if err := os.WriteFile(src, []byte(heartbeatYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := heartbeatStage(src, dst, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	// kwok draws each delay uniformly from [duration, jitter]: equal bounds beat exactly every 2 s.
	want := strings.Replace(strings.Replace(heartbeatYAML, "20000", "2000", 1), "25000", "2000", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// A stage without a delay must fail rather than keep kwok's interval silently.
	if err := os.WriteFile(src, []byte("kind: Stage\nspec: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := heartbeatStage(src, dst, time.Second); err == nil {
		t.Error("heartbeatStage accepted a stage without durationMilliseconds")
	}
}

func TestServingCertificateVerifiesForServiceName(t *testing.T) {
	ca, err := newCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pair, err := ca.servingFiles("x", []string{serviceDNS(WebhookServiceName, WebhookNamespace)}, dir+"/tls.crt", dir+"/tls.key")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(pair.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	// What the apiserver checks when it calls the webhook through its Service.
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "overcommit-webhook.overcommit-system.svc", Roots: roots}); err != nil {
		t.Errorf("serving cert does not verify for the service name: %v", err)
	}
	// A server certificate must not double as a client certificate.
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("serving cert verifies for client auth")
	}
}
