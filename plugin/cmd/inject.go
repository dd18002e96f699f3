package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// InjectOptions are the options of `kubectl overcommit inject`.
type InjectOptions struct {
	base
	filename         string
	templateDir      string
	fromCluster      bool
	webhookNamespace string
	output           string

	templates *templateSet
}

// NewCmdInject returns `kubectl overcommit inject`.
func NewCmdInject(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &InjectOptions{base: base{IOStreams: streams, factory: f}}
	cmd := &cobra.Command{
		Use:   "inject -f FILE (--template-dir DIR | --from-cluster) [-o yaml|json]",
		Short: "Print pods or workloads with their sidecars injected, as the webhook would admit them",
		Long: `Print the objects in FILE with the sidecar templates their pods ask for (annotation
` + names.SidecarInjectAnnotation + `) injected by the webhook's own code, offline: nothing is
created. Pods are injected; Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs
have their pod template injected, so applying the output gives pods that the webhook leaves as they
are.

Templates come from --template-dir (ConfigMap manifests labelled ` + names.SidecarTemplateLabel + `, the
files you would apply) or --from-cluster (the ConfigMaps in --webhook-namespace). Like the webhook,
it refuses an unknown or invalid template or a name clash, and leaves pods in kube-system,
kube-public, kube-node-lease and the webhook's namespace alone. It does not check the namespace's
` + names.SidecarInjectionLabel + ` label: it shows what injection gives, not whether it is on.`,
		Example: `  # What will the webhook make of this pod, with the cluster's templates?
  kubectl overcommit inject -f pod.yaml --from-cluster

  # Try a template change before applying it
  kubectl overcommit inject -f deployment.yaml --template-dir ./sidecar-templates

  # From stdin
  kubectl get deploy web -o yaml | kubectl overcommit inject -f - --from-cluster`,
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	cmd.Flags().StringVarP(&o.filename, "filename", "f", "", "File with the pods or workloads to inject (YAML or JSON, several documents allowed); - reads stdin")
	cmd.Flags().StringVar(&o.templateDir, "template-dir", "", "Directory of sidecar template ConfigMap manifests (*.yaml, *.yml, *.json)")
	cmd.Flags().BoolVar(&o.fromCluster, "from-cluster", false, "Read the sidecar templates from the cluster")
	cmd.Flags().StringVar(&o.webhookNamespace, "webhook-namespace", defaultWebhookNamespace, "Namespace of the overcommit webhook, which holds the sidecar templates")
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatYAML, "Output format: yaml or json")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagDirname("template-dir")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatYAML, output.FormatJSON))
	return cmd
}

// Complete makes the clients, only when the templates come from the cluster: offline use needs
// no kubeconfig.
func (o *InjectOptions) Complete(_ *cobra.Command, _ []string) error {
	if o.fromCluster {
		return o.completeClients()
	}
	return nil
}

// Validate checks the flags.
func (o *InjectOptions) Validate() error {
	if o.filename == "" {
		return errors.New("-f/--filename is required")
	}
	if (o.templateDir == "") == !o.fromCluster {
		return errors.New("exactly one of --template-dir and --from-cluster is required")
	}
	if o.webhookNamespace == "" {
		return errors.New("--webhook-namespace must not be empty")
	}
	return outputFormat(o.output, output.FormatYAML, output.FormatJSON)
}

// Run reads the templates and the objects, injects, and prints.
func (o *InjectOptions) Run(ctx context.Context) error {
	var err error
	if o.fromCluster {
		o.templates, err = clusterTemplates(ctx, o)
	} else {
		o.templates, err = dirTemplates(o.templateDir, o.warn)
	}
	if err != nil {
		return err
	}
	in, err := o.open()
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	objs, err := decodeObjects(in)
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.filename, err)
	}
	if len(objs) == 0 {
		return fmt.Errorf("reading %s: no objects", o.filename)
	}
	for _, obj := range objs {
		if err := o.inject(obj); err != nil {
			return err
		}
	}
	return o.print(objs)
}

func (o *InjectOptions) open() (io.ReadCloser, error) {
	if o.filename == "-" {
		return io.NopCloser(o.In), nil
	}
	f, err := os.Open(o.filename)
	if err != nil {
		return nil, fmt.Errorf("opening -f: %w", err)
	}
	return f, nil
}

// inject injects into a pod or a workload's pod template, in place.
func (o *InjectOptions) inject(obj runtime.Object) error {
	meta, spec, what, err := podParts(obj)
	if err != nil {
		return err
	}
	ns := obj.(metav1.Object).GetNamespace()
	if len(sidecar.Requested(meta.Annotations)) == 0 {
		return nil
	}
	if ns == o.webhookNamespace || ns == metav1.NamespaceSystem || ns == metav1.NamespacePublic || ns == corev1.NamespaceNodeLease {
		o.warn("%s: the webhook never injects pods in namespace %s; left unchanged", what, ns)
		return nil
	}
	pod := &corev1.Pod{ObjectMeta: *meta, Spec: *spec}
	res, err := sidecar.InjectRequested(pod, o.templates.get)
	if err != nil {
		return fmt.Errorf("%s: sidecar injection failed: %s", what, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, s := range res.Skipped {
		o.warn("%s: sidecar template %q not injected: %s", what, s.Template, s.Reason)
	}
	*meta, *spec = pod.ObjectMeta, pod.Spec
	return nil
}

// podParts returns the metadata and spec that the webhook would see for the object's pods.
func podParts(obj runtime.Object) (*metav1.ObjectMeta, *corev1.PodSpec, string, error) {
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec, "pod/" + o.Name, nil
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
		gvk := obj.GetObjectKind().GroupVersionKind()
		return nil, nil, "", fmt.Errorf("%s has no pods to inject: want a Pod or a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob", gvk.Kind)
	}
	m := obj.(metav1.Object)
	return &tmpl.ObjectMeta, &tmpl.Spec, strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind) + "/" + m.GetName(), nil
}

// decodeObjects reads every YAML or JSON document as a typed object, keeping its apiVersion and kind.
func decodeObjects(r io.Reader) ([]runtime.Object, error) {
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

func (o *InjectOptions) print(objs []runtime.Object) error {
	if o.output == output.FormatJSON {
		var v any = objs[0]
		if len(objs) > 1 {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		}
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		_, err = o.Out.Write(append(b, '\n'))
		return err
	}
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		if i > 0 {
			if _, err := io.WriteString(o.Out, "---\n"); err != nil {
				return err
			}
		}
		if _, err := o.Out.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// configMaps returns the v1 ConfigMaps among the documents; other documents, Kubernetes objects
// or not, are skipped.
func configMaps(r io.Reader) ([]*corev1.ConfigMap, error) {
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

// templateSet is the templates read for inject, with the webhook's lookup errors.
type templateSet struct {
	where   string
	valid   map[string]*sidecar.Template
	invalid map[string]error
}

func (s *templateSet) get(name string) (*sidecar.Template, error) {
	if t, ok := s.valid[name]; ok {
		return t, nil
	}
	if err, ok := s.invalid[name]; ok {
		return nil, fmt.Errorf("%w: %w", sidecar.ErrInvalid, err)
	}
	return nil, fmt.Errorf("%w %q in %s", sidecar.ErrNotFound, name, s.where)
}

func (s *templateSet) add(cm *corev1.ConfigMap) {
	if t, err := sidecar.FromConfigMap(cm.Name, cm.Data); err != nil {
		s.invalid[cm.Name] = err
	} else {
		s.valid[cm.Name] = t
	}
}

func clusterTemplates(ctx context.Context, o *InjectOptions) (*templateSet, error) {
	s := &templateSet{where: "namespace " + o.webhookNamespace, valid: map[string]*sidecar.Template{}, invalid: map[string]error{}}
	list, err := o.clients.Kube.CoreV1().ConfigMaps(o.webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: names.SidecarTemplateLabel})
	if err != nil {
		return nil, fmt.Errorf("listing sidecar templates in namespace %s: %w", o.webhookNamespace, err)
	}
	for i := range list.Items {
		s.add(&list.Items[i])
	}
	return s, nil
}

// dirTemplates reads the ConfigMap manifests in dir. Other kinds (a kustomization, a README) are
// skipped; an unlabelled ConfigMap is skipped with a warning, as the webhook would never see it.
func dirTemplates(dir string, warn func(string, ...any)) (*templateSet, error) {
	s := &templateSet{where: dir, valid: map[string]*sidecar.Template{}, invalid: map[string]error{}}
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
		cms, err := configMaps(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		for _, cm := range cms {
			if _, labelled := cm.Labels[names.SidecarTemplateLabel]; !labelled {
				warn("%s: ConfigMap %s is not labelled %s; the webhook would ignore it, so does inject", file, cm.Name, names.SidecarTemplateLabel)
				continue
			}
			s.add(cm)
		}
	}
	return s, nil
}
