package admission_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/webhook/admission"
	"github.com/overcommit-dev/overcommit/webhook/certs"
)

// tlsFixture is a serving CA and certificate in a cert dir, and a client CA with a client
// certificate it issued and one issued by another CA.
type tlsFixture struct {
	certDir      string
	servingPool  *x509.CertPool
	clientCAFile string
	client       tls.Certificate // signed by the client CA
	stranger     tls.Certificate // signed by another CA
	strangerCA   []byte          // that other CA, PEM
}

func newTLSFixture(t *testing.T) tlsFixture {
	t.Helper()
	dir := t.TempDir()
	servingCA, err := certs.NewCA("serving-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := servingCA.IssueServing("webhook", []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tls.crt", kp.CertPEM)
	write("tls.key", kp.KeyPEM)
	clientCA, err := certs.NewCA("apiserver-client-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := certs.NewCA("cluster-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *certs.CA) tls.Certificate {
		kp, err := ca.IssueClient("kube-apiserver", nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servingCA.CertPEM)
	return tlsFixture{certDir: dir, servingPool: pool, clientCAFile: write("client-ca.crt", clientCA.CertPEM),
		client: issue(clientCA), stranger: issue(otherCA), strangerCA: otherCA.CertPEM}
}

// startServer runs a Server with the echo webhook on /mutate-node until the test ends.
func startServer(t *testing.T, o admission.ServerOptions) (*admission.Server, *admission.Metrics) {
	t.Helper()
	o.Host, o.Port = "127.0.0.1", 0
	srv := admission.NewServer(o)
	wh, m := newWebhook(echo)
	srv.Register("/mutate-node", wh)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for srv.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the server did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv, m
}

// post sends the node fixture's review with the client certificate cert (none if nil) and
// returns "HTTP <code>", or "refused: <error>".
func post(t *testing.T, f tlsFixture, addr string, cert *tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{RootCAs: f.servingPool, ServerName: "localhost",
		// Presented whether or not the server names its CA as acceptable (Go's client would
		// otherwise send none).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	body, err := fixtures.NodeReview("worker-1", "system:node:worker-1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post("https://"+addr+"/mutate-node", "application/json", strings.NewReader(string(body)))
	if err != nil {
		// With TLS 1.3 the client's handshake ends before the server judges its certificate:
		// the alert (or a closed connection) comes back on the write of the request or on the
		// read of its answer. The handler's count tells that nothing reached HTTP.
		return "refused: " + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// With --client-ca-file, only a client presenting a certificate from that CA gets an HTTP
// answer; anyone else is refused in the TLS handshake, before a byte of HTTP is read.
func TestServerRequiresClientCertificates(t *testing.T) {
	f := newTLSFixture(t)
	srv, m := startServer(t, admission.ServerOptions{CertDir: f.certDir, ClientCAFile: f.clientCAFile})
	got := map[string]bool{
		"apiserver's certificate": post(t, f, srv.Addr(), &f.client) == "HTTP 200",
		"no certificate":          strings.HasPrefix(post(t, f, srv.Addr(), nil), "refused: "),
		"another CA's":            strings.HasPrefix(post(t, f, srv.Addr(), &f.stranger), "refused: "),
	}
	want := map[string]bool{"apiserver's certificate": true, "no certificate": true, "another CA's": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("as expected, by client (-want +got):\n%s", diff)
	}
	// Only the authenticated request reached HTTP.
	if n := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeAllowed)); n != 1 {
		t.Errorf("%v reviews answered, want 1", n)
	}
	// The readiness check passes: the server completes handshakes and asks for a certificate.
	if err := srv.StartedChecker()(nil); err != nil {
		t.Errorf("StartedChecker with client certificates required: %v", err)
	}
}

// A replaced client CA file takes effect at the next handshake, without a restart (a mounted
// Secret is updated in place); a file caught half-written keeps the CAs that worked.
func TestServerReloadsClientCA(t *testing.T) {
	f := newTLSFixture(t)
	srv, _ := startServer(t, admission.ServerOptions{CertDir: f.certDir, ClientCAFile: f.clientCAFile})
	answers := func() []string {
		return []string{post(t, f, srv.Addr(), &f.client), post(t, f, srv.Addr(), &f.stranger)}
	}
	refusedOrOK := func(s []string) []string {
		out := make([]string, len(s))
		for i, a := range s {
			out[i] = a
			if strings.HasPrefix(a, "refused: ") {
				out[i] = "refused"
			}
		}
		return out
	}
	replace := func(data []byte, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(f.clientCAFile, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// A distinct modification time, whatever the file system's resolution.
		mt := time.Now().Add(age)
		if err := os.Chtimes(f.clientCAFile, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		file []byte
		want []string // the client CA's certificate, the other CA's
	}{
		{"as started", nil, []string{"HTTP 200", "refused"}},
		{"replaced by the other CA", f.strangerCA, []string{"refused", "HTTP 200"}},
		{"half-written", []byte("-----BEGIN CERT"), []string{"refused", "HTTP 200"}},
	}
	for i, st := range steps {
		if st.file != nil {
			replace(st.file, time.Duration(i)*time.Minute)
		}
		if diff := cmp.Diff(st.want, refusedOrOK(answers())); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
}

// Without --client-ca-file nobody is asked for a certificate (the default install).
func TestServerWithoutClientCA(t *testing.T) {
	f := newTLSFixture(t)
	srv, _ := startServer(t, admission.ServerOptions{CertDir: f.certDir})
	got := []string{post(t, f, srv.Addr(), nil), post(t, f, srv.Addr(), &f.stranger)}
	if diff := cmp.Diff([]string{"HTTP 200", "HTTP 200"}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if err := srv.StartedChecker()(nil); err != nil {
		t.Errorf("StartedChecker: %v", err)
	}
}

// The checker fails while nothing listens, and when the server stops answering TLS.
func TestStartedCheckerFails(t *testing.T) {
	srv := admission.NewServer(admission.ServerOptions{Host: "127.0.0.1"})
	if err := srv.StartedChecker()(nil); err == nil {
		t.Errorf("StartedChecker passed before the server listened")
	}
	f := newTLSFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := admission.NewServer(admission.ServerOptions{Host: "127.0.0.1", CertDir: f.certDir})
	done := make(chan error, 1)
	go func() { done <- started.Start(ctx) }()
	for started.Addr() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	if err := started.StartedChecker()(nil); err != nil {
		t.Fatalf("StartedChecker of a running server: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := started.StartedChecker()(nil); err == nil {
		t.Errorf("StartedChecker passed after the server stopped")
	}
}

// A client may not send more than 64 KiB of headers (net/http's default, and
// controller-runtime's server, allow 1 MiB per connection).
func TestServerBoundsHeaders(t *testing.T) {
	f := newTLSFixture(t)
	srv, _ := startServer(t, admission.ServerOptions{CertDir: f.certDir})
	c, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: f.servingPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST /mutate-node HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: " + strings.Repeat("a", 128<<10) + "\r\nContent-Length: 2\r\n\r\n{}"
	_, _ = io.WriteString(c, req)
	status, err := readStatusLine(c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("HTTP/1.1 431 Request Header Fields Too Large", status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func readStatusLine(c net.Conn) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			return string(line), fmt.Errorf("reading the status line: %w", err)
		}
		if b[0] == '\n' {
			return strings.TrimRight(string(line), "\r"), nil
		}
		line = append(line, b[0])
	}
}
