package sidecars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// ClusterTemplates reads the template ConfigMaps in the webhook's namespace, with the webhook's
// lookup errors.
func ClusterTemplates(ctx context.Context, c kubernetes.Interface, namespace string) (*sidecar.Set, error) {
	s := sidecar.NewSet(" in namespace " + namespace)
	list, err := c.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: names.SidecarTemplateLabel})
	if err != nil {
		return nil, fmt.Errorf("listing sidecar templates in namespace %s: %w", namespace, err)
	}
	for i := range list.Items {
		_, _ = s.PutConfigMap(list.Items[i].Name, list.Items[i].Data) // an invalid template is the set's to report
	}
	return s, nil
}

// DirTemplates reads the ConfigMap manifests in dir (--template-dir). Other kinds (a
// kustomization, a README) are skipped; an unlabelled ConfigMap is skipped with a warning, as the
// webhook would never see it.
func DirTemplates(dir string, warn func(string, ...any)) (*sidecar.Set, error) {
	s := sidecar.NewSet(" in " + dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading --template-dir: %w", err)
	}
	var files []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(files)
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("reading template: %w", err)
		}
		cms, err := ConfigMaps(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		for _, cm := range cms {
			if _, labelled := cm.Labels[names.SidecarTemplateLabel]; !labelled {
				warn("%s: ConfigMap %s is not labelled %s; the webhook would ignore it, so does inject", file, cm.Name, names.SidecarTemplateLabel)
				continue
			}
			_, _ = s.PutConfigMap(cm.Name, cm.Data) // an invalid template is the set's to report
		}
	}
	return s, nil
}

// ConfigMaps returns the v1 ConfigMaps among the YAML or JSON documents; other documents,
// Kubernetes objects or not, are skipped.
func ConfigMaps(r io.Reader) ([]*corev1.ConfigMap, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*corev1.ConfigMap
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(raw.Raw, &tm); err != nil || tm.APIVersion != "v1" || tm.Kind != "ConfigMap" {
			continue
		}
		cm := &corev1.ConfigMap{}
		if err := json.Unmarshal(raw.Raw, cm); err != nil {
			return nil, fmt.Errorf("ConfigMap: %w", err)
		}
		out = append(out, cm)
	}
}
