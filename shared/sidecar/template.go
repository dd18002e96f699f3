// Package sidecar holds sidecar templates and their injection into a Pod. It is pure: the webhook
// feeds it templates from its ConfigMap informer, the plugin's offline inject from files or a
// cluster, and both get the same pod.
package sidecar

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// DataKey is the ConfigMap data key that holds a template; the ConfigMap's name is the template's.
// One template per ConfigMap keeps hot reload, RBAC and error reporting per template.
const DataKey = "template.yaml"

// MaxTemplateBytes bounds a template's YAML. ConfigMaps are capped at 1 MiB anyway; this keeps a
// fuzzer or a mistaken file from costing more.
const MaxTemplateBytes = 1 << 20

// Template is what one sidecar template injects. Field names follow the Pod API so a template
// reads like the pod spec it extends.
type Template struct {
	// Name is the template's name (the ConfigMap's), set by Parse, not read from the YAML.
	Name string `json:"-"`
	// Native turns Containers into native sidecars: init containers with restartPolicy Always,
	// started before the pod's own init containers and stopped after its containers, so Jobs
	// still complete (Kubernetes >= 1.29).
	Native bool `json:"native,omitempty"`
	// SkipHostNetwork leaves hostNetwork pods without this template (a proxy that redirects the
	// pod's traffic would redirect the node's).
	SkipHostNetwork bool `json:"skipHostNetwork,omitempty"`
	// Containers are the sidecars: appended to spec.containers, or native (see Native).
	Containers []corev1.Container `json:"containers,omitempty"`
	// InitContainers run to completion before the pod's own init containers.
	InitContainers []corev1.Container `json:"initContainers,omitempty"`
	// Volumes are added to the pod.
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// Env is added to each of the pod's own containers that does not set the variable itself.
	Env []corev1.EnvVar `json:"env,omitempty"`
	// VolumeMounts are added to each of the pod's own containers.
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// ImagePullSecrets are added to the pod.
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
}

// Parse decodes and validates one template. Unknown fields are errors: a misspelt field would
// otherwise be dropped silently and the pod injected without it.
func Parse(name string, data []byte) (*Template, error) {
	if len(data) > MaxTemplateBytes {
		return nil, fmt.Errorf("template %q: %d bytes exceeds the limit of %d", name, len(data), MaxTemplateBytes)
	}
	var t Template
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return nil, fmt.Errorf("template %q: parsing %s: %w", name, DataKey, err)
	}
	t.Name = name
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// FromConfigMap parses the template a ConfigMap holds. It takes the name and data rather than a
// ConfigMap so callers need not convert what they already have.
func FromConfigMap(name string, data map[string]string) (*Template, error) {
	body, ok := data[DataKey]
	if !ok {
		return nil, fmt.Errorf("template %q: the ConfigMap has no %s key", name, DataKey)
	}
	// Any other key is most likely a misnamed template (template.yml); refuse rather than guess.
	var extra []string
	for k := range data {
		if k != DataKey {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("template %q: unexpected ConfigMap keys %s: only %s is read", name, strings.Join(extra, ", "), DataKey)
	}
	return Parse(name, []byte(body))
}

// Validate checks what the apiserver cannot check for us until a pod is created, so a broken
// template is reported when it is loaded instead of when it denies someone's pod.
func (t *Template) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if msgs := validation.IsDNS1123Subdomain(t.Name); len(msgs) > 0 {
		add("name: %s", strings.Join(msgs, "; "))
	}
	if len(t.Containers)+len(t.InitContainers)+len(t.Volumes)+len(t.Env)+len(t.VolumeMounts)+len(t.ImagePullSecrets) == 0 {
		add("the template injects nothing")
	}
	seen := map[string]string{} // container name -> where it was first seen
	for i := range t.Containers {
		checkContainer("containers", i, &t.Containers[i], t.Native, seen, add)
	}
	for i := range t.InitContainers {
		checkContainer("initContainers", i, &t.InitContainers[i], false, seen, add)
	}
	checkVolumes(t.Volumes, add)
	checkEnv("env", t.Env, add)
	checkVolumeMounts(t.VolumeMounts, add)
	for i, s := range t.ImagePullSecrets {
		if s.Name == "" {
			add("imagePullSecrets[%d].name: required", i)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("template %q: %w", t.Name, errors.Join(errs...))
	}
	return nil
}

// checkContainer checks the container field[i]; seen holds the names of the template's
// containers checked before it. nativeSidecar is a container of a native template.
func checkContainer(field string, i int, c *corev1.Container, nativeSidecar bool, seen map[string]string, add func(string, ...any)) {
	where := fmt.Sprintf("%s[%d]", field, i)
	if c.Name == "" {
		add("%s.name: required", where)
	} else if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
		add("%s.name %q: %s", where, c.Name, strings.Join(msgs, "; "))
	} else if prev, dup := seen[c.Name]; dup {
		add("%s.name %q: duplicates %s", where, c.Name, prev)
	} else {
		seen[c.Name] = where
	}
	if strings.TrimSpace(c.Image) == "" {
		add("%s.image: required", where)
	}
	switch {
	case nativeSidecar && c.RestartPolicy != nil:
		add("%s.restartPolicy: must not be set in a native template: injection sets Always", where)
	case field == "containers" && c.RestartPolicy != nil:
		add("%s.restartPolicy: must not be set; use native: true for a native sidecar", where)
	case field == "initContainers" && c.RestartPolicy != nil && *c.RestartPolicy != corev1.ContainerRestartPolicyAlways:
		add("%s.restartPolicy: only Always (a native sidecar) is allowed, got %q", where, *c.RestartPolicy)
	}
	if field == "initContainers" && c.RestartPolicy == nil && (c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil || c.Lifecycle != nil) {
		add("%s: probes and lifecycle hooks are only allowed on native sidecars (restartPolicy: Always)", where)
	}
	checkEnv(where+".env", c.Env, add)
}

func checkVolumes(volumes []corev1.Volume, add func(string, ...any)) {
	seen := map[string]bool{}
	for i, v := range volumes {
		where := fmt.Sprintf("volumes[%d]", i)
		if v.Name == "" {
			add("%s.name: required", where)
		} else if msgs := validation.IsDNS1123Label(v.Name); len(msgs) > 0 {
			add("%s.name %q: %s", where, v.Name, strings.Join(msgs, "; "))
		} else if seen[v.Name] {
			add("%s.name %q: duplicate volume", where, v.Name)
		}
		seen[v.Name] = true
	}
}

func checkVolumeMounts(mounts []corev1.VolumeMount, add func(string, ...any)) {
	paths := map[string]bool{}
	for i, m := range mounts {
		where := fmt.Sprintf("volumeMounts[%d]", i)
		if m.Name == "" {
			add("%s.name: required", where)
		}
		switch {
		case m.MountPath == "":
			add("%s.mountPath: required", where)
		case paths[m.MountPath]:
			add("%s.mountPath %q: mounted twice", where, m.MountPath)
		}
		paths[m.MountPath] = true
	}
}

func checkEnv(field string, env []corev1.EnvVar, add func(string, ...any)) {
	seen := map[string]bool{}
	for i, e := range env {
		where := fmt.Sprintf("%s[%d]", field, i)
		if e.Name == "" {
			add("%s.name: required", where)
			continue
		}
		if msgs := validation.IsRelaxedEnvVarName(e.Name); len(msgs) > 0 {
			add("%s.name %q: %s", where, e.Name, strings.Join(msgs, "; "))
		}
		if seen[e.Name] {
			add("%s.name %q: set twice", where, e.Name)
		}
		seen[e.Name] = true
	}
}
