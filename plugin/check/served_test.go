package check

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/webhook/certs"
)

const serverName = "overcommit-webhook.overcommit-system.svc"

// serve starts a TLS server on loopback with kp and returns its address.
func serve(t *testing.T, kp *certs.KeyPair) string {
	t.Helper()
	pair, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool()}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// TestServedCertificate makes real TLS handshakes on loopback, with a server that, like the
// webhook behind an apiserver with client authentication, refuses clients without a certificate,
// and checks what it presents against a caBundle.
func TestServedCertificate(t *testing.T) {
	ca, err := certs.NewCA("overcommit-webhook-ca", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA("someone-else", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.IssueServing(serverName, []string{serverName}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := ca.IssueServing("elsewhere", []string{"elsewhere.example"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	shortLived, err := ca.IssueServing(serverName, []string{serverName}, 3*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	for _, tc := range []struct {
		name     string
		address  string
		caBundle []byte
		status   Status
		says     string
	}{
		{"verifies", serve(t, good), ca.CertPEM, OK, "verifies against the caBundle for " + serverName},
		{"another CA", serve(t, good), other.CertPEM, Fail, "certificate signed by unknown authority"},
		{"wrong name", serve(t, wrongName), ca.CertPEM, Fail, "not " + serverName},
		{"expires in days", serve(t, shortLived), ca.CertPEM, Fail, "in 2 days"},
		{"empty caBundle", serve(t, good), nil, Fail, "caBundle holds no PEM certificate"},
		{"nothing listening", closed, ca.CertPEM, Fail, "cannot reach the webhook at " + closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := kube.ServedChainAt(t.Context(), tc.address)
			s := &Served{Address: tc.address, ServerName: serverName, CABundle: tc.caBundle, Chain: chain, Err: err}
			r := s.result(time.Now())
			if r.Status != tc.status || !strings.Contains(r.Message, tc.says) {
				t.Errorf("got %s %q (fix %q), want %s containing %q", r.Status, r.Message, r.Fix, tc.status, tc.says)
			}
		})
	}
	t.Run("expires within 60 days", func(t *testing.T) {
		chain, err := kube.ServedChainAt(t.Context(), serve(t, good))
		s := &Served{Address: "x", ServerName: serverName, CABundle: ca.CertPEM, Chain: chain, Err: err}
		if r := s.result(time.Now().Add(320 * 24 * time.Hour)); r.Status != Warn {
			t.Errorf("got %s %q, want a warning", r.Status, r.Message)
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		s := &Served{Address: "x", ServerName: serverName, CABundle: ca.CertPEM, Err: errors.New("connection refused")}
		if r := s.result(time.Now()); r.Status != Fail || !strings.Contains(r.Message, "connection refused") {
			t.Errorf("got %s %q", r.Status, r.Message)
		}
	})
}
