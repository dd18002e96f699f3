package requests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func container(name, cpu, mem string) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}
}

func TestPod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := container("proxy", "100m", "64Mi")
	sidecar.RestartPolicy = &always
	tests := []struct {
		name string
		spec corev1.PodSpec
		want Amount
	}{
		{name: "containers add up",
			spec: corev1.PodSpec{Containers: []corev1.Container{container("a", "500m", "1Gi"), container("b", "250m", "512Mi")}},
			want: Amount{MilliCPU: 750, Memory: 1536 << 20}},
		{name: "a larger init container wins",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{container("init", "2", "128Mi")},
				Containers: []corev1.Container{container("a", "500m", "1Gi")}},
			want: Amount{MilliCPU: 2000, Memory: 1 << 30}},
		{name: "native sidecars add to the containers",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{sidecar},
				Containers: []corev1.Container{container("a", "500m", "1Gi")}},
			want: Amount{MilliCPU: 600, Memory: 1088 << 20}},
		{name: "overhead counts",
			spec: corev1.PodSpec{Containers: []corev1.Container{container("a", "500m", "1Gi")},
				Overhead: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("120Mi")}},
			want: Amount{MilliCPU: 750, Memory: 1144 << 20}},
		{name: "no requests", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, want: Amount{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Pod(&corev1.Pod{Spec: tt.spec})); diff != "" {
				t.Errorf("Pod() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestActivePodsFieldSelector(t *testing.T) {
	if got, want := ActivePodsFieldSelector("n1"), "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := ActivePodsFieldSelector(""), "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAmountAccessors(t *testing.T) {
	a := Amount{MilliCPU: 750, Memory: 1536 << 20}
	b := Amount{MilliCPU: 250, Memory: 512 << 20}
	type got struct {
		CPU, Memory, Pods int64
		Sum, Diff         Amount
		List              map[corev1.ResourceName]string
	}
	want := got{CPU: 750, Memory: 1536 << 20, Pods: 0,
		Sum: Amount{MilliCPU: 1000, Memory: 2 << 30}, Diff: Amount{MilliCPU: 500, Memory: 1 << 30},
		List: map[corev1.ResourceName]string{corev1.ResourceCPU: "750m", corev1.ResourceMemory: "1536Mi"}}
	g := got{CPU: a.Of(corev1.ResourceCPU), Memory: a.Of(corev1.ResourceMemory), Pods: a.Of(corev1.ResourcePods),
		Sum: a.Add(b), Diff: a.Sub(b), List: map[corev1.ResourceName]string{}}
	for name, q := range a.List() {
		g.List[name] = q.String()
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
