// Package workload finds the pods a manifest makes: a Pod itself, or the pod template of a
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob. Offline inject and preview
// --fit read files through it, so both accept the same kinds.
package workload

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PodParts returns the metadata and spec of the pods obj makes, pointing into obj, and a name
// for it ("deployment/web"); ok is false for any other kind.
func PodParts(obj runtime.Object) (meta *metav1.ObjectMeta, spec *corev1.PodSpec, name string, ok bool) {
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec, "pod/" + o.Name, true
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
	case *appsv1.DaemonSet:
		tmpl = &o.Spec.Template
	case *appsv1.ReplicaSet:
		tmpl = &o.Spec.Template
	case *batchv1.Job:
		tmpl = &o.Spec.Template
	case *batchv1.CronJob:
		tmpl = &o.Spec.JobTemplate.Spec.Template
	default:
		return nil, nil, "", false
	}
	return &tmpl.ObjectMeta, &tmpl.Spec, Name(obj), true
}

// Name is "kind/name" for obj, the kind in lower case.
func Name(obj runtime.Object) string {
	name := ""
	if m, ok := obj.(metav1.Object); ok {
		name = m.GetName()
	}
	return strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind) + "/" + name
}
