package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/internal/freeport"
)

const (
	metricsServerNamespace = "kube-system"
	metricsServerName      = "metrics-server"
	metricsAPIServiceName  = "v1beta1.metrics.k8s.io"
)

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

type metricsServerState struct {
	proc *process
	port int
	args []string
}

func (c *Cluster) launchMetricsServer() error {
	port, err := freeport.Port()
	if err != nil {
		return err
	}
	kc, err := c.writeKubeconfig("metrics-server.kubeconfig", "metrics-server", "system:masters")
	if err != nil {
		return err
	}
	// The apiserver reaches it through an ExternalName Service, so it verifies this name.
	serving, err := c.ca.servingFiles(metricsServerName,
		[]string{serviceDNS(metricsServerName, metricsServerNamespace), "localhost", "127.0.0.1"},
		c.path("metrics-server", "tls.crt"), c.path("metrics-server", "tls.key"))
	if err != nil {
		return err
	}
	st := &metricsServerState{port: port, args: []string{
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--tls-cert-file=" + serving.CertFile,
		"--tls-private-key-file=" + serving.KeyFile,
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		// kwok publishes 127.0.0.1 and its own port in each node's status.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-use-node-status-port",
		"--kubelet-certificate-authority=" + c.ca.CertFile,
		"--node-selector=" + KwokNodeLabel + "=" + KwokNodeLabelValue,
		// The shortest resolution metrics-server accepts; the timeout must stay below 90% of it.
		"--metric-resolution=10s",
		"--kubelet-request-timeout=5s",
	}}
	c.mu.Lock()
	c.metricsServer = st
	c.mu.Unlock()
	return c.runMetricsServer()
}

func (c *Cluster) runMetricsServer() error {
	st := c.metricsServer
	p, err := startProcess(metricsServerName, c.bin("metrics-server"), st.args, c.logDir(), nil)
	if err != nil {
		return err
	}
	p.healthURL = "https://" + hostPort(st.port) + "/readyz"
	c.mu.Lock()
	st.proc = p
	c.mu.Unlock()
	return nil
}

// registerMetricsServer creates the ExternalName Service and the APIService, then waits until
// the aggregator reports the APIService Available (it has reached metrics-server).
func (c *Cluster) registerMetricsServer(ctx context.Context) error {
	st := c.metricsServer
	if err := ensureExternalNameService(ctx, c.client, metricsServerNamespace, metricsServerName, int32(st.port)); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(c.restConfig)
	if err != nil {
		return fmt.Errorf("create dynamic client: %w", err)
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": metricsAPIServiceName},
		"spec": map[string]any{
			"group":                "metrics.k8s.io",
			"version":              "v1beta1",
			"groupPriorityMinimum": int64(100),
			"versionPriority":      int64(100),
			"caBundle":             base64.StdEncoding.EncodeToString(c.ca.CertPEM),
			"service": map[string]any{
				"namespace": metricsServerNamespace,
				"name":      metricsServerName,
				"port":      int64(st.port),
			},
		},
	}}
	if _, err := dyn.Resource(apiServiceGVR).Create(ctx, apiService, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create APIService %s: %w", metricsAPIServiceName, err)
	}
	if err := c.waitMetricsServer(ctx, dyn); err != nil {
		return err
	}
	return nil
}

func (c *Cluster) waitMetricsServer(ctx context.Context, dyn dynamic.Interface) error {
	p := c.metricsServer.proc
	if err := p.waitFor(ctx, "registered as "+metricsAPIServiceName+" (Available)", 90*time.Second, func(ctx context.Context) error {
		obj, err := dyn.Resource(apiServiceGVR).Get(ctx, metricsAPIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, ci := range conds {
			cond, _ := ci.(map[string]any)
			if cond["type"] == "Available" {
				if cond["status"] == "True" {
					return nil
				}
				return fmt.Errorf("APIService Available=%v: %v: %v", cond["status"], cond["reason"], cond["message"])
			}
		}
		return errors.New("APIService has no Available condition yet")
	}); err != nil {
		return err
	}
	c.logf("metrics-server ready on %s, %s Available (%s)", hostPort(c.metricsServer.port), metricsAPIServiceName, since(p.started))
	return nil
}

// StopMetricsServer kills metrics-server; its APIService stays registered and turns unavailable,
// as when metrics-server crashes in a real cluster.
func (c *Cluster) StopMetricsServer() error {
	c.mu.Lock()
	st := c.metricsServer
	var p *process
	if st != nil {
		p, st.proc = st.proc, nil
	}
	c.mu.Unlock()
	if st == nil {
		return errors.New("metrics-server is not part of this cluster (Options.MetricsServer)")
	}
	if err := p.stop(); err != nil {
		return err
	}
	c.logf("metrics-server stopped")
	return nil
}

// StartMetricsServer restarts metrics-server after StopMetricsServer, on the same port, and waits
// until its APIService is Available again.
func (c *Cluster) StartMetricsServer(ctx context.Context) error {
	c.mu.Lock()
	st := c.metricsServer
	c.mu.Unlock()
	if st == nil {
		return errors.New("metrics-server is not part of this cluster (Options.MetricsServer)")
	}
	if st.proc != nil && !st.proc.exited() {
		return errors.New("metrics-server is already running")
	}
	if err := c.runMetricsServer(); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(c.restConfig)
	if err != nil {
		return fmt.Errorf("create dynamic client: %w", err)
	}
	return c.waitMetricsServer(ctx, dyn)
}

// ensureExternalNameService creates (or updates) a Service that the apiserver resolves to
// https://localhost:<port>.
func ensureExternalNameService(ctx context.Context, cs kubernetes.Interface, namespace, name string, port int32) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}},
		},
	}
	existing, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", namespace, name, err)
		}
	case err != nil:
		return fmt.Errorf("get Service %s/%s: %w", namespace, name, err)
	default:
		existing.Spec = svc.Spec
		if _, err := cs.CoreV1().Services(namespace).Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update Service %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

func serviceDNS(name, namespace string) string {
	return name + "." + namespace + ".svc"
}
