package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/sidecars"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// templateObjects are the ConfigMaps of testdata/sidecar-templates, as stored in a cluster.
func templateObjects(t *testing.T) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	files, _ := filepath.Glob("testdata/sidecar-templates/*.yaml")
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		cms, err := sidecars.ConfigMaps(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms {
			objs = append(objs, cm)
		}
	}
	return objs
}

func injectedPod(name, ns, status string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Annotations: map[string]string{names.SidecarStatusAnnotation: status}}}
}

func sidecarCluster(t *testing.T) *testcluster.Cluster {
	objs := append(templateObjects(t),
		injectedPod("web-1", "shop", `{"templates":[{"name":"mesh","initContainers":["mesh-init","mesh-proxy"]},{"name":"logs","containers":["log-shipper"]}]}`),
		injectedPod("web-2", "shop", `{"templates":[{"name":"mesh","initContainers":["mesh-init","mesh-proxy"]}]}`),
		injectedPod("old", "batch", `{"templates":[{"name":"retired","containers":["agent"]}]}`),
		injectedPod("junk", "batch", `not json`),
		testcluster.Pod("plain", "node-a", "1", "1Gi"),
	)
	return testcluster.New(testcluster.Options{Objects: objs})
}

func TestSidecars(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"sidecars", []string{"sidecars"}},
		{"sidecars-yaml", []string{"sidecars", "-o", "yaml"}},
		{"sidecars-other-namespace", []string{"sidecars", "--webhook-namespace", "elsewhere"}},
		{"sidecars-bad-output", []string{"sidecars", "-o", "wide"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			compareGolden(t, tc.name, transcript(run(t, sidecarCluster(t), tc.args...)))
		})
	}
}

func TestInject(t *testing.T) {
	dir := filepath.Join("testdata", "sidecar-templates")
	in := filepath.Join("testdata", "inject-workloads.yaml")
	tests := []struct {
		name string
		args []string
	}{
		{"inject-template-dir", []string{"inject", "-f", in, "--template-dir", dir}},
		{"inject-from-cluster-json", []string{"inject", "-f", in, "--from-cluster", "-o", "json"}},
		{"inject-needs-one-source", []string{"inject", "-f", in}},
		{"inject-two-sources", []string{"inject", "-f", in, "--from-cluster", "--template-dir", dir}},
		{"inject-not-a-workload", []string{"inject", "-f", filepath.Join(dir, "templates.yaml"), "--template-dir", dir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			compareGolden(t, tc.name, transcript(run(t, sidecarCluster(t), tc.args...)))
		})
	}
}

func TestInjectRefuses(t *testing.T) {
	dir := filepath.Join("testdata", "sidecar-templates")
	tests := []struct {
		name, pod, want string
	}{
		{"invalid", "broken", `pod/p: sidecar injection failed: invalid sidecar template: template "broken": parsing template.yaml`},
		{"unknown", "mesh,nope", `pod/p: sidecar injection failed: no such sidecar template "nope" in testdata/sidecar-templates`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "pod.yaml")
			pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.overcommit.dev/inject: '" + tc.pod + "'}}\nspec: {containers: [{name: app, image: a}]}\n"
			if err := os.WriteFile(file, []byte(pod), 0o644); err != nil {
				t.Fatal(err)
			}
			out, _, err := run(t, sidecarCluster(t), "inject", "-f", file, "--template-dir", dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("printed a pod although injection failed:\n%s", out)
			}
		})
	}
	// The same file through stdin, clashing with the template's container.
	clash := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.overcommit.dev/inject: logs}}\nspec: {containers: [{name: log-shipper, image: a}]}\n"
	var c = sidecarCluster(t)
	_, _, err := runWithStdin(t, c, clash, "inject", "-f", "-", "--template-dir", dir)
	if err == nil || !strings.Contains(err.Error(), `template "logs": container "log-shipper" clashes with the pod's own container "log-shipper"`) {
		t.Errorf("clash: %v", err)
	}
}
