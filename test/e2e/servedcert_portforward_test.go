//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kubeletportforward "k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/utils/ptr"

	pluginkube "github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// loopbackForwarder answers a kubelet's port-forward of any pod's port by dialling that port on
// loopback, where the suite's webhook listens.
type loopbackForwarder struct{ forwards atomic.Int32 }

func (f *loopbackForwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	f.forwards.Add(1)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(conn, stream); _ = conn.(*net.TCPConn).CloseWrite() })
	_, _ = io.Copy(stream, conn)
	wg.Wait()
	return nil
}

// TestServedChainThroughPortForward: for a webhook behind a ClusterIP Service, `check`'s
// webhook-certificate reaches a ready pod of the Service through a port-forward via the real
// apiserver and gets the certificate the webhook serves.
//
// No kubelet here runs containers, so the pod's node is served by a stand-in kubelet: an HTTPS
// server that answers the apiserver's /portForward/ with the kubelet's own streaming library
// (k8s.io/cri-streaming) and connects the stream to the suite's webhook on loopback. The
// apiserver, its node lookup, the upgrade and client-go's port-forward are all real.
func TestServedChainThroughPortForward(t *testing.T) {
	t.Parallel()
	const ns, node, pod, svc = "e2e-portforward", "e2e-portforward-node", "webhook-0", "webhook"
	ctx := context.Background()
	cs := kube(t)

	fwd := &loopbackForwarder{}
	var paths sync.Map
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, true)
		kubeletportforward.ServePortForward(w, r, fwd, pod, "", &kubeletportforward.V4Options{},
			time.Minute, 30*time.Second, []string{kubeletportforward.ProtocolV1Name})
	}))
	t.Cleanup(kubelet.Close)
	kubeletPort, err := strconv.Atoi(kubelet.URL[strings.LastIndex(kubelet.URL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}

	// A node no kwok manages, whose status sends the apiserver to the stand-in. The status goes in
	// with the create, as a kubelet registers, so no later write races the node controllers.
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletPort)}},
		}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	// The pod's named port is the suite webhook's loopback port, so the forward lands on it; the
	// Service's port 443 targets it by name, as deploy/'s does.
	webhookPort := int32(env.WebhookPort())
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "webhook", Image: "registry.example/webhook:1",
			Ports: []corev1.ContainerPort{{Name: "webhook", ContainerPort: webhookPort}}}}}}
	harness.Eventually(t, 30*time.Second, "pod "+pod, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	// No selector: the EndpointSlice is ours, so no controller rewrites it.
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromString("webhook")}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName: ptr.To(node), TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To(webhookPort)}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e := pluginkube.ReadServiceEndpoints(ctx, cs, ns, svc)
	if e.Err != nil || e.Ready != 1 || len(e.ReadyPods) != 1 {
		t.Fatalf("Service endpoints %+v, want one ready pod", e)
	}
	address, chain, err := pluginkube.ServedChain(ctx, env.RESTConfig(), cs, e, 443)
	if err != nil {
		t.Fatalf("ServedChain: %v (reached %s)", err, address)
	}
	if want := "pod " + ns + "/" + pod + " through a port-forward"; address != want {
		t.Errorf("address %q, want %q", address, want)
	}

	// What the webhook serves when dialled directly.
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(webhookPort))), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only its certificate is compared
	if err != nil {
		t.Fatal(err)
	}
	direct := conn.ConnectionState().PeerCertificates
	_ = conn.Close()
	if len(chain) == 0 || !chain[0].Equal(direct[0]) {
		t.Errorf("through the port-forward: %d certificates; want first the webhook's leaf, %v", len(chain), direct[0].Subject)
	}
	if fwd.forwards.Load() == 0 {
		t.Error("the stand-in kubelet forwarded no connection")
	}
	if _, ok := paths.Load("/portForward/" + ns + "/" + pod); !ok {
		var seen []string
		paths.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
		t.Errorf("the apiserver called the kubelet at %v, want /portForward/%s/%s", seen, ns, pod)
	}
}
