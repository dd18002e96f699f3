//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// The suite's webhook requires client certificates (--client-ca-file) and the apiserver presents
// one through its AdmissionConfiguration kubeconfig: every review in this package went through
// that handshake. Here: node and pod reviews reach the webhook through the apiserver, and a
// direct call without the apiserver's certificate is refused in the TLS handshake.
func TestClientCertificateAuthentication(t *testing.T) {
	if env.WebhookClientCAFile() == "" {
		t.Fatal("the suite's webhook does not require client certificates")
	}
	ctx := context.Background()

	// A node review: a dry-run create of an opted-in node comes back mutated.
	node := cluster.KwokNode("client-auth-probe", "1", "1Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Annotations[names.CPURatioAnnotation] = "2"
	delete(node.Annotations, cluster.KwokNodeAnnotation)
	got, err := kube(t).CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry-run create of an opted-in node: %v", err)
	}
	if cpu := got.Status.Allocatable.Cpu().String(); cpu != "2" {
		t.Errorf("node review through the apiserver: allocatable cpu %s, want 2 (x2)", cpu)
	}

	// A pod review: a pod asking for a template that does not exist is denied by the webhook
	// itself (its own message), not by the apiserver failing to call it.
	ns := sidecarNamespace(t, "client-auth", true)
	_, err = dryRunPod(ns, appPod("client-auth", "no-such-template"))
	if err == nil || !strings.Contains(err.Error(), `denied the request`) || strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("pod review through the apiserver: %v; want the webhook's own denial", err)
	}

	// Direct calls: without a certificate, or with one the cluster CA issued (the admin's), the
	// server ends the handshake; no HTTP request is read.
	admin, err := clientcmd.LoadFromFile(env.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	var adminCert *tls.Certificate
	for _, ai := range admin.AuthInfos {
		c, err := tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
		if err != nil {
			t.Fatalf("admin client certificate: %v", err)
		}
		adminCert = &c
	}
	results := map[string]string{
		"no certificate":           directPost(t, nil),
		"the admin's (cluster CA)": directPost(t, adminCert),
	}
	for who, res := range results {
		if !strings.HasPrefix(res, "refused") {
			t.Errorf("direct POST to /mutate-pod with %s: %s; want it refused in the TLS handshake", who, res)
		}
	}
}

// directPost sends an AdmissionReview to the webhook's /mutate-pod over TLS, trusting its
// serving CA, presenting cert whatever the server asks for (none if nil). It returns "HTTP
// <code>" or "refused: <error>".
func directPost(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.CA())
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"namespace":"default",` +
		`"operation":"CREATE","object":{"metadata":{"name":"p","annotations":{"` + names.SidecarInjectAnnotation + `":"x"}},"spec":{"containers":[{"name":"a","image":"a"}]}}}}`
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/mutate-pod", env.WebhookPort()), "application/json", strings.NewReader(body))
	if err != nil {
		return "refused: " + err.Error()
	}
	resp.Body.Close()
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// The control: the same direct call with the apiserver's own client certificate is answered,
// so the refusals above are about the certificate, not the call.
func TestClientCertificateOfTheAPIServerIsAccepted(t *testing.T) {
	kc, err := clientcmd.LoadFromFile(env.WorkDir() + "/kubeconfig/admission-webhooks.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("overcommit-webhook.overcommit-system.svc:%d", env.WebhookPort())
	var users []string
	for name := range kc.AuthInfos {
		users = append(users, name)
	}
	if diff := cmp.Diff([]string{want}, users); diff != "" {
		t.Fatalf("user entries of the apiserver's webhook kubeconfig (-want +got):\n%s", diff)
	}
	ai := kc.AuthInfos[want]
	c, err := tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	if got := directPost(t, &c); got != "HTTP 200" {
		t.Errorf("direct POST with the apiserver's certificate: %s, want HTTP 200", got)
	}
	if _, err := os.Stat(env.WebhookClientCAFile()); err != nil {
		t.Error(err)
	}
}
