//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// sidecarNamespace creates a namespace, opted in to injection or not, deleted when the test ends.
func sidecarNamespace(t *testing.T, name string, optedIn bool) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if optedIn {
		ns.Labels = map[string]string{names.SidecarInjectionLabel: names.SidecarInjectionEnabled}
	}
	if _, err := kube(t).CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = kube(t).CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// templateConfigMap is a sidecar template as an operator writes it.
func templateConfigMap(name, body string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.WebhookNamespace,
			Labels: map[string]string{names.SidecarTemplateLabel: "true"}},
		Data: map[string]string{sidecar.DataKey: body},
	}
}

// newTemplate stores a template and, unless it is meant to be broken, waits until the webhook
// injects it (its informer picks it up asynchronously).
func newTemplate(t *testing.T, name, body string) {
	t.Helper()
	cms := kube(t).CoreV1().ConfigMaps(cluster.WebhookNamespace)
	if _, err := cms.Create(context.Background(), templateConfigMap(name, body), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating template %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cms.Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// waitTemplate waits until a dry-run pod asking for the template is admitted by the webhook
// with check passing on the result.
func waitTemplate(t *testing.T, ns, template string, check func(*corev1.Pod) error) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "template "+template+" in effect", func() error {
		got, err := dryRunPod(ns, appPod("probe", template))
		if err != nil {
			return err
		}
		if check == nil {
			if _, ok := got.Annotations[names.SidecarStatusAnnotation]; !ok {
				return fmt.Errorf("not injected")
			}
			return nil
		}
		return check(got)
	})
}

func dryRunPod(ns string, p *corev1.Pod) (*corev1.Pod, error) {
	return env.Client().CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// sidecarNodeLabel is on no node: the sidecar tests' pods stay Pending, so they never land on
// (and skew the sums of) another test's node. Injection happens at creation anyway.
const sidecarNodeLabel = "e2e.overcommit.dev/sidecar-node"

func appPod(name, inject string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{sidecarNodeLabel: "none"},
			// Restricted, so that the webhook's namespace (Pod Security "restricted") admits it.
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
	if inject != "" {
		p.Annotations = map[string]string{names.SidecarInjectAnnotation: inject}
	}
	return p
}

func createPod(t *testing.T, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := kube(t).CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, p.Name, err)
	}
	return got
}

func containerNames(cs []corev1.Container) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func status(t *testing.T, p *corev1.Pod) *sidecar.Status {
	t.Helper()
	s, err := sidecar.ReadStatus(p.Annotations)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	logsTemplate = `
containers:
- name: log-shipper
  image: registry.example/log-shipper:2
  volumeMounts: [{name: app-logs, mountPath: /var/log/app, readOnly: true}]
volumes: [{name: app-logs, emptyDir: {}}]
volumeMounts: [{name: app-logs, mountPath: /var/log/app}]
env: [{name: LOG_DIR, value: /var/log/app}]
`
	meshTemplate = `
native: true
initContainers: [{name: mesh-init, image: registry.example/mesh-init:1}]
containers: [{name: mesh-proxy, image: registry.example/mesh-proxy:1}]
env: [{name: HTTP_PROXY, value: "http://127.0.0.1:15001"}]
`
)

func TestSidecarDeploymentInjected(t *testing.T) {
	ns := sidecarNamespace(t, "sidecar-deploy", true)
	newTemplate(t, "e2e-logs", logsTemplate)
	newTemplate(t, "e2e-mesh", meshTemplate)
	waitTemplate(t, ns, "e2e-logs", nil)
	waitTemplate(t, ns, "e2e-mesh", nil)

	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{names.SidecarInjectAnnotation: "e2e-mesh,e2e-logs"}},
				Spec:       appPod("", "").Spec,
			},
		},
	}
	if _, err := kube(t).AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	harness.Eventually(t, time.Minute, "two pods of deployment web", func() error {
		list, err := kube(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(list.Items) != 2 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		pods = list.Items
		return nil
	})
	for _, p := range pods {
		// The ReplicaSet's pods reach the webhook without a name or namespace in the object.
		if diff := cmpStrings([]string{"mesh-init", "mesh-proxy"}, containerNames(p.Spec.InitContainers)); diff != "" {
			t.Errorf("pod %s init containers: %s", p.Name, diff)
		}
		if diff := cmpStrings([]string{"app", "log-shipper"}, containerNames(p.Spec.Containers)); diff != "" {
			t.Errorf("pod %s containers: %s", p.Name, diff)
		}
		if rp := p.Spec.InitContainers[1].RestartPolicy; rp == nil || *rp != corev1.ContainerRestartPolicyAlways {
			t.Errorf("pod %s: mesh-proxy is not a native sidecar: %v", p.Name, rp)
		}
		var env []string
		for _, e := range p.Spec.Containers[0].Env {
			env = append(env, e.Name)
		}
		if diff := cmpStrings([]string{"HTTP_PROXY", "LOG_DIR"}, env); diff != "" {
			t.Errorf("pod %s app env: %s", p.Name, diff)
		}
		s := status(t, &p)
		if !s.Has("e2e-mesh") || !s.Has("e2e-logs") || len(s.Templates) != 2 {
			t.Errorf("pod %s status annotation: %s", p.Name, p.Annotations[names.SidecarStatusAnnotation])
		}
	}
	// The Deployment itself is not touched: only pods are.
	got, err := kube(t).AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.Template.Spec.Containers); n != 1 {
		t.Errorf("deployment template has %d containers", n)
	}
}

// runPlugin runs `kubectl overcommit args...` through the real kubectl and fails the test on an
// error.
func runPlugin(t *testing.T, args ...string) string {
	t.Helper()
	return mustKubectl(t, append([]string{"overcommit"}, args...)...)
}

func cmpStrings(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want %q, got %q", want, got)
}

func TestSidecarNativeJobCompletes(t *testing.T) {
	// The job's own node, tainted so that no other test's pod lands on it.
	node := "sidecar-job-node"
	newKwokNode(t, node, "4", "8Gi", map[string]string{sidecarNodeLabel: node})
	mustKubectl(t, "taint", "node", node, sidecarNodeLabel+"="+node+":NoSchedule")
	ns := sidecarNamespace(t, "sidecar-job", true)
	newTemplate(t, "e2e-native", meshTemplate)
	waitTemplate(t, ns, "e2e-native", nil)

	spec := appPod("", "").Spec
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.NodeSelector = map[string]string{sidecarNodeLabel: node}
	spec.Tolerations = []corev1.Toleration{{Key: sidecarNodeLabel, Operator: corev1.TolerationOpEqual, Value: node, Effect: corev1.TaintEffectNoSchedule}}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{names.SidecarInjectAnnotation: "e2e-native"}},
				Spec:       spec,
			},
		},
	}
	if _, err := kube(t).BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kwok runs the job's pod to Succeeded (its pod-complete stage); the native sidecar, an init
	// container that never exits, does not hold the Job open.
	harness.Eventually(t, 90*time.Second, "job batch Complete", func() error {
		j, err := kube(t).BatchV1().Jobs(ns).Get(context.Background(), "batch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				t.Fatalf("job failed: %s", c.Message)
			}
		}
		return fmt.Errorf("conditions %v, succeeded %d", j.Status.Conditions, j.Status.Succeeded)
	})
	list, err := kube(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "job-name=batch"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("job pods: %v, %v", list, err)
	}
	p := list.Items[0]
	if diff := cmpStrings([]string{"mesh-init", "mesh-proxy"}, containerNames(p.Spec.InitContainers)); diff != "" {
		t.Errorf("job pod init containers: %s", diff)
	}
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("job pod phase %s", p.Status.Phase)
	}
}

func TestSidecarUntouchedNamespaces(t *testing.T) {
	newTemplate(t, "e2e-untouched", logsTemplate)
	optedIn := sidecarNamespace(t, "sidecar-optin", true)
	waitTemplate(t, optedIn, "e2e-untouched", nil)
	plain := sidecarNamespace(t, "sidecar-plain", false)

	for _, ns := range []string{plain, metav1.NamespaceSystem, cluster.WebhookNamespace} {
		p := createPod(t, ns, appPod("asks-"+ns, "e2e-untouched"))
		t.Cleanup(func() {
			_ = kube(t).CoreV1().Pods(ns).Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		})
		if len(p.Spec.Containers) != 1 || p.Annotations[names.SidecarStatusAnnotation] != "" {
			t.Errorf("pod in %s was injected: containers %q, status %q", ns, containerNames(p.Spec.Containers), p.Annotations[names.SidecarStatusAnnotation])
		}
	}
	// Even a template that does not exist cannot block pods there: the webhook is never called.
	p := createPod(t, plain, appPod("asks-for-nothing-real", "no-such-template"))
	if len(p.Spec.Containers) != 1 {
		t.Errorf("pod in %s was injected", plain)
	}
	// In the opted-in namespace, a pod that asks for nothing is not sent to the webhook at all
	// (matchConditions), and one that asks gets the sidecar.
	if p := createPod(t, optedIn, appPod("asks-nothing", "")); len(p.Spec.Containers) != 1 {
		t.Errorf("pod without the annotation was injected")
	}
	if p := createPod(t, optedIn, appPod("asks", "e2e-untouched")); len(p.Spec.Containers) != 2 {
		t.Errorf("pod in the opted-in namespace was not injected: %q", containerNames(p.Spec.Containers))
	}
}

func TestSidecarTemplateHotReload(t *testing.T) {
	ns := sidecarNamespace(t, "sidecar-reload", true)
	newTemplate(t, "e2e-reload", "containers: [{name: agent, image: registry.example/agent:1}]")
	waitTemplate(t, ns, "e2e-reload", nil)
	first := createPod(t, ns, appPod("first", "e2e-reload"))
	if img := first.Spec.Containers[1].Image; img != "registry.example/agent:1" {
		t.Fatalf("first pod's agent image %s", img)
	}
	pids := env.PIDs()

	mustKubectl(t, "-n", cluster.WebhookNamespace, "patch", "configmap", "e2e-reload", "--type=merge",
		"-p", `{"data":{"template.yaml":"containers: [{name: agent, image: registry.example/agent:2}]"}}`)
	waitTemplate(t, ns, "e2e-reload", func(p *corev1.Pod) error {
		if img := p.Spec.Containers[1].Image; img != "registry.example/agent:2" {
			return fmt.Errorf("agent image still %s", img)
		}
		return nil
	})
	second := createPod(t, ns, appPod("second", "e2e-reload"))
	if img := second.Spec.Containers[1].Image; img != "registry.example/agent:2" {
		t.Errorf("second pod's agent image %s, want the edited template's", img)
	}
	if !slices.Equal(pids, env.PIDs()) {
		t.Errorf("processes changed: %v -> %v", pids, env.PIDs())
	}
}

func TestSidecarBrokenTemplateReported(t *testing.T) {
	ns := sidecarNamespace(t, "sidecar-broken", true)
	newTemplate(t, "e2e-good", "containers: [{name: good, image: registry.example/good:1}]")
	newTemplate(t, "e2e-broken", "containers: [{name: bad, imagee: registry.example/bad:1}]")
	waitTemplate(t, ns, "e2e-good", nil)

	// A pod asking for the broken template is denied, naming it and the problem.
	harness.Eventually(t, 30*time.Second, "pod asking for e2e-broken denied as invalid", func() error {
		_, err := kube(t).CoreV1().Pods(ns).Create(context.Background(), appPod("wants-broken", "e2e-good,e2e-broken"), metav1.CreateOptions{})
		if err == nil {
			return fmt.Errorf("admitted")
		}
		if !strings.Contains(err.Error(), `invalid sidecar template: template "e2e-broken"`) || !strings.Contains(err.Error(), `unknown field "imagee"`) {
			return fmt.Errorf("unexpected error: %v", err)
		}
		return nil
	})
	// The good one keeps working.
	if p := createPod(t, ns, appPod("wants-good", "e2e-good")); !slices.Contains(containerNames(p.Spec.Containers), "good") {
		t.Errorf("good template not injected: %q", containerNames(p.Spec.Containers))
	}
	// An unknown template and a name clash are denied too, never half-injected.
	_, err := kube(t).CoreV1().Pods(ns).Create(context.Background(), appPod("wants-unknown", "e2e-good,e2e-nope"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `no such sidecar template "e2e-nope"`) {
		t.Errorf("unknown template: %v", err)
	}
	clash := appPod("clash", "e2e-good")
	clash.Spec.Containers[0].Name = "good"
	_, err = kube(t).CoreV1().Pods(ns).Create(context.Background(), clash, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `template "e2e-good": container "good" clashes with the pod's own container "good"`) {
		t.Errorf("clash: %v", err)
	}

	// The plugin reports it with the same reason, and counts the pod using the good one.
	out := runPlugin(t, "sidecars")
	if !regexp.MustCompile(`(?m)^e2e-broken\s+Invalid\s.*unknown field "imagee"`).MatchString(out) {
		t.Errorf("kubectl overcommit sidecars does not report e2e-broken as invalid:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^e2e-good\s+Valid\s+false\s+good\s+<none>\s+1\s`).MatchString(out) {
		t.Errorf("kubectl overcommit sidecars does not count one pod for e2e-good:\n%s", out)
	}

	metrics, err := env.WebhookMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^overcommit_sidecar_templates\{state="invalid"\} ([0-9]+)`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("invalid templates gauge: %v", m)
	}
	if !strings.Contains(metrics, `overcommit_sidecar_denials_total{reason="invalid_template"}`) {
		t.Error("no invalid_template denial counted")
	}
	logs, err := os.ReadFile(env.LogFile("overcommit-webhook"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), `"template":"e2e-broken"`) {
		t.Error("the webhook did not log the broken template")
	}
}

func TestSidecarServerDryRun(t *testing.T) {
	ns := sidecarNamespace(t, "sidecar-dryrun", true)
	newTemplate(t, "e2e-dry", meshTemplate)
	waitTemplate(t, ns, "e2e-dry", nil)

	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	p := appPod("dry", "e2e-dry")
	p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	raw, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustKubectl(t, "-n", ns, "create", "--dry-run=server", "-o", "json", "-f", manifest)
	var got corev1.Pod
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmpStrings([]string{"mesh-init", "mesh-proxy"}, containerNames(got.Spec.InitContainers)); diff != "" {
		t.Errorf("dry-run pod init containers: %s", diff)
	}
	// The plugin's offline injection, with the cluster's templates, gives the same pod spec.
	out = runPlugin(t, "inject", "-f", manifest, "--from-cluster")
	var offline corev1.Pod
	if err := yaml.Unmarshal([]byte(out), &offline); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2][]corev1.Container{{offline.Spec.InitContainers, got.Spec.InitContainers}, {offline.Spec.Containers, got.Spec.Containers}} {
		if diff := cmpStrings(containerNames(c[1]), containerNames(c[0])); diff != "" {
			t.Errorf("kubectl overcommit inject differs from the webhook: %s", diff)
		}
	}
	if offline.Annotations[names.SidecarStatusAnnotation] != got.Annotations[names.SidecarStatusAnnotation] {
		t.Errorf("status annotation: inject %q, webhook %q", offline.Annotations[names.SidecarStatusAnnotation], got.Annotations[names.SidecarStatusAnnotation])
	}
	if _, err := kube(t).CoreV1().Pods(ns).Get(context.Background(), "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry run stored the pod: %v", err)
	}
	// Dry runs are not counted as injections (sideEffects: None, and honest metrics).
	metrics, err := env.WebhookMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(metrics, `overcommit_sidecar_injections_total{template="e2e-dry"}`) {
		t.Error("a dry run was counted as an injection")
	}
}
