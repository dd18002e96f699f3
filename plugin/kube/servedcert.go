package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// handshakeTimeout bounds reaching the webhook and its TLS handshake.
const handshakeTimeout = 10 * time.Second

// ServedChain makes a TLS handshake with the webhook behind a Service the way the apiserver
// would reach it, and returns where it went and the certificates presented, unverified (the
// caller verifies them against the caBundle and says why they fail). An ExternalName Service is
// dialled at its name; otherwise a port-forward through the apiserver reaches one of its ready
// pods, since the Service's cluster IP is rarely routable from where kubectl runs.
func ServedChain(ctx context.Context, cfg *rest.Config, c kubernetes.Interface, e ServiceEndpoints, port int32) (address string, chain []*x509.Certificate, err error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if e.ExternalName != "" {
		address = net.JoinHostPort(e.ExternalName, strconv.Itoa(int(port)))
		chain, err = handshake(ctx, address, address)
		return address + " (ExternalName)", chain, err
	}
	if len(e.ReadyPods) == 0 {
		return "Service " + e.Namespace + "/" + e.Name, nil, errors.New("no ready pod to reach it through")
	}
	pod := e.ReadyPods[0]
	address = fmt.Sprintf("pod %s/%s through a port-forward", e.Namespace, pod)
	if cfg == nil {
		return address, nil, errors.New("no client configuration for a port-forward")
	}
	target, err := targetPort(ctx, c, e, pod, port)
	if err != nil {
		return address, nil, err
	}
	local, stop, err := forward(ctx, cfg, c, e.Namespace, pod, target)
	if err != nil {
		return address, nil, err
	}
	defer close(stop)
	chain, err = handshake(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(local))), address)
	return address, chain, err
}

// ServedChainAt makes a TLS handshake with a webhook configured by URL and returns the
// certificates presented, unverified.
func ServedChainAt(ctx context.Context, address string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	return handshake(ctx, address, address)
}

// handshake dials address and returns the certificates the server presents. A server that then
// refuses the handshake because it wants a client certificate (the apiserver presents one) has
// shown its own first, which is all that is checked.
func handshake(ctx context.Context, address, what string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	d := tls.Dialer{Config: &tls.Config{
		// Verified by the caller against the caBundle, to say precisely why it fails.
		InsecureSkipVerify: true, //nolint:gosec // see above
		VerifyConnection: func(cs tls.ConnectionState) error {
			chain = cs.PeerCertificates
			return nil
		},
	}}
	conn, err := d.DialContext(ctx, "tcp", address)
	if conn != nil {
		_ = conn.Close()
	}
	if len(chain) > 0 {
		return chain, nil
	}
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", what, err)
	}
	return nil, errors.New("no certificate presented")
}

// targetPort is the pod port behind the Service port, resolving a named target port through the
// pod's containers.
func targetPort(ctx context.Context, c kubernetes.Interface, e ServiceEndpoints, pod string, port int32) (int32, error) {
	svc, err := c.CoreV1().Services(e.Namespace).Get(ctx, e.Name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading Service %s/%s: %w", e.Namespace, e.Name, err)
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		switch {
		case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
			return sp.TargetPort.IntVal, nil
		case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
			p, err := c.CoreV1().Pods(e.Namespace).Get(ctx, pod, metav1.GetOptions{})
			if err != nil {
				return 0, fmt.Errorf("reading pod %s/%s for its port %q: %w", e.Namespace, pod, sp.TargetPort.StrVal, err)
			}
			for _, ct := range p.Spec.Containers {
				for _, cp := range ct.Ports {
					if cp.Name == sp.TargetPort.StrVal && cp.Protocol != corev1.ProtocolUDP {
						return cp.ContainerPort, nil
					}
				}
			}
			return 0, fmt.Errorf("pod %s/%s has no port named %q", e.Namespace, pod, sp.TargetPort.StrVal)
		}
		return port, nil
	}
	return 0, fmt.Errorf("the Service %s/%s has no port %d", e.Namespace, e.Name, port)
}

// forward opens a port-forward to the pod's port on a free loopback port; closing stop ends it.
func forward(ctx context.Context, cfg *rest.Config, c kubernetes.Interface, namespace, pod string, port int32) (int32, chan struct{}, error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod, err)
	}
	url := c.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, url)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(int(port))}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod, err)
	case <-ctx.Done():
		close(stop)
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: no local port (%v)", namespace, pod, err)
	}
	return int32(ports[0].Local), stop, nil
}
