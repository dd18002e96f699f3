package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/webhook/certs"
)

func TestLivenessCheck(t *testing.T) {
	tlsDown := errors.New("no TLS handshake")
	for _, tc := range []struct {
		name    string
		serving bool
		tls     error
		want    error
	}{
		{"waiting for the certificate: alive", false, tlsDown, nil},
		{"serving, TLS answers", true, nil, nil},
		{"serving, TLS does not answer", true, tlsDown, tlsDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serving := make(chan struct{})
			if tc.serving {
				close(serving)
			}
			calls := 0
			got := livenessCheck(serving, func(*http.Request) error { calls++; return tc.tls })(nil)
			if !errors.Is(got, tc.want) {
				t.Errorf("check = %v, want %v", got, tc.want)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.serving]; calls != want {
				t.Errorf("TLS check ran %d times, want %d", calls, want)
			}
		})
	}
}

// TestHealthzDialsTLS: the liveness endpoint the Deployment probes (/healthz) includes the
// webhook server's TLS handshake check, and it passes when the server requires client
// certificates (--client-ca-file), which the check does not present.
func TestHealthzDialsTLS(t *testing.T) {
	clientCA, err := certs.NewCA("client-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCAFile := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(clientCAFile, clientCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, probePort := runWithoutCluster(t, "--client-ca-file="+clientCAFile, "--metrics-bind-address=0")
	probe := fmt.Sprintf("http://127.0.0.1:%d", probePort)
	body, err := fetch(probe + "/healthz?verbose")
	if err != nil {
		t.Fatalf("healthz with client certificates required: %v\n%s", err, body)
	}
	if !strings.Contains(body, "[+]webhook ok") {
		t.Errorf("/healthz does not check the webhook server's TLS:\n%s", body)
	}
}
