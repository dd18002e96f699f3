package sidecars

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/workload"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// Injector injects sidecars into pods and workloads offline, as the webhook would admit them.
type Injector struct {
	Templates *sidecar.Set
	// WebhookNamespace is never injected, like the system namespaces.
	WebhookNamespace string
	// Warn reports what is left unchanged, the way kubectl prints warnings.
	Warn func(format string, args ...any)
}

// Inject injects into a pod or a workload's pod template, in place.
func (in *Injector) Inject(obj runtime.Object) error {
	meta, spec, what, err := podParts(obj)
	if err != nil {
		return err
	}
	ns := obj.(metav1.Object).GetNamespace()
	if len(sidecar.Requested(meta.Annotations)) == 0 {
		return nil
	}
	if ns == in.WebhookNamespace || names.IsSystemNamespace(ns) {
		in.Warn("%s: the webhook never injects pods in namespace %s; left unchanged", what, ns)
		return nil
	}
	pod := &corev1.Pod{ObjectMeta: *meta, Spec: *spec}
	res, err := sidecar.InjectRequested(pod, in.Templates.Get)
	if err != nil {
		return fmt.Errorf("%s: sidecar injection failed: %s", what, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, s := range res.Skipped {
		in.Warn("%s: sidecar template %q not injected: %s", what, s.Template, s.Reason)
	}
	*meta, *spec = pod.ObjectMeta, pod.Spec
	return nil
}

// podParts returns the metadata and spec that the webhook would see for the object's pods.
func podParts(obj runtime.Object) (*metav1.ObjectMeta, *corev1.PodSpec, string, error) {
	meta, spec, name, ok := workload.PodParts(obj)
	if !ok {
		gvk := obj.GetObjectKind().GroupVersionKind()
		return nil, nil, "", fmt.Errorf("%s has no pods to inject: want a Pod or a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob", gvk.Kind)
	}
	return meta, spec, name, nil
}

// DecodeObjects reads every YAML or JSON document as a typed object, keeping its apiVersion and kind.
func DecodeObjects(r io.Reader) ([]runtime.Object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []runtime.Object
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(bytes.TrimSpace(raw.Raw)) == 0 || string(raw.Raw) == "null" {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
		out = append(out, obj)
	}
	return out, nil
}

// Print writes the objects as kubectl get does: JSON (a List when there are several) or YAML
// documents.
func Print(w io.Writer, format string, objs []runtime.Object) error {
	if format == output.FormatJSON {
		var v any = objs[0]
		if len(objs) > 1 {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		}
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
