package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Status is the value of the status annotation: what the webhook injected, per template. A
// later pass (reinvocation, or a pod re-created from an injected one) reads it to inject nothing
// twice; the plugin reads it to count pods per template.
type Status struct {
	Templates []Injected `json:"templates"`
}

// Injected records one template's injection.
type Injected struct {
	Name           string   `json:"name"`
	Containers     []string `json:"containers,omitempty"`
	InitContainers []string `json:"initContainers,omitempty"`
	Volumes        []string `json:"volumes,omitempty"`
}

// ReadStatus decodes the status annotation; a pod without one has an empty Status.
func ReadStatus(annotations map[string]string) (*Status, error) {
	raw, ok := annotations[names.SidecarStatusAnnotation]
	if !ok || raw == "" {
		return &Status{}, nil
	}
	var s Status
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("annotation %s is not valid JSON: %w", names.SidecarStatusAnnotation, err)
	}
	return &s, nil
}

// Has reports whether the status records the named template.
func (s *Status) Has(name string) bool { return s.find(name) != nil }

func (s *Status) find(name string) *Injected {
	for i := range s.Templates {
		if s.Templates[i].Name == name {
			return &s.Templates[i]
		}
	}
	return nil
}

// ConflictError says why a template cannot be injected into a pod. The whole injection fails:
// a pod gets all the templates it asked for or is denied, never half of them.
type ConflictError struct {
	Template string
	Reason   string
}

func (e *ConflictError) Error() string { return fmt.Sprintf("template %q: %s", e.Template, e.Reason) }

// Lookup errors. Sources of templates (the webhook's informer, the plugin's files) wrap them so
// callers can tell an unknown template from a broken one.
var (
	ErrNotFound = errors.New("no such sidecar template")
	ErrInvalid  = errors.New("invalid sidecar template")
)

// Skip is a requested template that was deliberately not injected.
type Skip struct {
	Template string
	Reason   string
}

// Result says what Inject did.
type Result struct {
	// Injected are the templates injected by this call, in order.
	Injected []string
	// Present are requested templates that the status annotation shows were injected already and
	// whose containers are still there.
	Present []string
	// Skipped are requested templates not injected on purpose (hostNetwork).
	Skipped []Skip
}

// Changed reports whether the pod was modified.
func (r *Result) Changed() bool { return len(r.Injected) > 0 }

// InjectRequested injects the templates the pod's inject annotation asks for, looked up by name.
// Every lookup error is reported (unknown and invalid templates alike) and the pod is left as it
// was.
func InjectRequested(pod *corev1.Pod, lookup func(name string) (*Template, error)) (*Result, error) {
	requested := Requested(pod.Annotations)
	if len(requested) == 0 {
		return &Result{}, nil
	}
	templates := make([]*Template, 0, len(requested))
	var errs []error
	for _, n := range requested {
		t, err := lookup(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		templates = append(templates, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Inject(pod, templates)
}

// Inject adds the templates to the pod, in order, and records them in the status annotation.
// It is idempotent: a template the status records, whose containers the pod still has, is left
// alone. On any conflict it returns the errors of every template and leaves the pod unchanged.
//
// Placement: classic sidecars are appended to spec.containers. Template init containers, then
// native sidecars, go before the pod's own init containers, so those already run with the
// sidecar (the point of native sidecars). Env and volume mounts go to the pod's own containers
// (not init containers, not injected sidecars); a variable the container sets itself keeps its
// value.
func Inject(pod *corev1.Pod, templates []*Template) (*Result, error) {
	status, err := ReadStatus(pod.Annotations)
	if err != nil {
		return nil, err
	}
	p := pod.DeepCopy()
	res := &Result{}

	// Containers injected by earlier passes are sidecars, not the pod's own.
	injected := map[string]string{} // container name -> template that injected it
	for _, rec := range status.Templates {
		for _, n := range slices.Concat(rec.Containers, rec.InitContainers) {
			injected[n] = rec.Name
		}
	}
	var own []int
	for i, c := range p.Spec.Containers {
		if _, ok := injected[c.Name]; !ok {
			own = append(own, i)
		}
	}
	// New init containers go after those injected before and before the pod's own.
	initAt := 0
	for initAt < len(p.Spec.InitContainers) {
		if _, ok := injected[p.Spec.InitContainers[initAt].Name]; !ok {
			break
		}
		initAt++
	}

	var errs []error
	var records []Injected
	thisPass := map[string]string{} // container or volume key -> template injecting it now
	for _, t := range templates {
		if rec := status.find(t.Name); rec != nil && stillPresent(p, rec) {
			res.Present = append(res.Present, t.Name)
			continue
		}
		if t.SkipHostNetwork && p.Spec.HostNetwork {
			res.Skipped = append(res.Skipped, Skip{Template: t.Name, Reason: "the pod uses hostNetwork and the template sets skipHostNetwork"})
			continue
		}
		conflict := func(format string, args ...any) {
			errs = append(errs, &ConflictError{Template: t.Name, Reason: fmt.Sprintf(format, args...)})
		}
		rec := Injected{Name: t.Name}

		sidecars := make([]corev1.Container, len(t.Containers))
		for i := range t.Containers {
			sidecars[i] = *t.Containers[i].DeepCopy()
			if t.Native {
				sidecars[i].RestartPolicy = new(corev1.ContainerRestartPolicyAlways)
			}
		}
		inits := make([]corev1.Container, 0, len(t.InitContainers)+len(sidecars))
		for i := range t.InitContainers {
			inits = append(inits, *t.InitContainers[i].DeepCopy())
		}
		if t.Native {
			inits = append(inits, sidecars...)
			sidecars = nil
		}
		for _, c := range slices.Concat(inits, sidecars) {
			if other, ok := thisPass["container/"+c.Name]; ok {
				conflict("container %q is also injected by template %q", c.Name, other)
			} else if where := containerIn(p, c.Name); where != "" {
				if by, ok := injected[c.Name]; ok {
					conflict("container %q clashes with container %q that template %q injected earlier (%s)", c.Name, c.Name, by, where)
				} else {
					conflict("container %q clashes with the pod's own container %q (%s)", c.Name, c.Name, where)
				}
			}
			thisPass["container/"+c.Name] = t.Name
		}
		for _, v := range t.Volumes {
			i := slices.IndexFunc(p.Spec.Volumes, func(pv corev1.Volume) bool { return pv.Name == v.Name })
			switch {
			case i < 0:
				p.Spec.Volumes = append(p.Spec.Volumes, *v.DeepCopy())
				rec.Volumes = append(rec.Volumes, v.Name)
				thisPass["volume/"+v.Name] = t.Name
			case equality.Semantic.DeepEqual(p.Spec.Volumes[i], v):
				// The same volume is already there (another template's, or the pod's): share it.
			case thisPass["volume/"+v.Name] != "":
				conflict("volume %q differs from the volume of that name injected by template %q", v.Name, thisPass["volume/"+v.Name])
			default:
				conflict("volume %q clashes with the pod's own volume %q", v.Name, v.Name)
			}
		}
		for _, ci := range own {
			c := &p.Spec.Containers[ci]
			for _, e := range t.Env {
				if !slices.ContainsFunc(c.Env, func(ce corev1.EnvVar) bool { return ce.Name == e.Name }) {
					c.Env = append(c.Env, *e.DeepCopy())
				}
			}
			for _, m := range t.VolumeMounts {
				j := slices.IndexFunc(c.VolumeMounts, func(cm corev1.VolumeMount) bool { return cm.MountPath == m.MountPath })
				switch {
				case j < 0:
					c.VolumeMounts = append(c.VolumeMounts, *m.DeepCopy())
				case c.VolumeMounts[j].Name != m.Name:
					conflict("volumeMount of %q at %s clashes with container %q's mount of volume %q there", m.Name, m.MountPath, c.Name, c.VolumeMounts[j].Name)
				}
			}
		}
		for _, s := range t.ImagePullSecrets {
			if !slices.Contains(p.Spec.ImagePullSecrets, s) {
				p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, s)
			}
		}
		p.Spec.InitContainers = slices.Insert(p.Spec.InitContainers, initAt, inits...)
		initAt += len(inits)
		p.Spec.Containers = append(p.Spec.Containers, sidecars...)
		for _, c := range inits {
			rec.InitContainers = append(rec.InitContainers, c.Name)
		}
		for _, c := range sidecars {
			rec.Containers = append(rec.Containers, c.Name)
		}
		records = append(records, rec)
		res.Injected = append(res.Injected, t.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(records) == 0 {
		return res, nil
	}
	for _, rec := range records {
		// A record whose containers are gone is stale; the new one replaces it.
		status.Templates = slices.DeleteFunc(status.Templates, func(r Injected) bool { return r.Name == rec.Name })
		status.Templates = append(status.Templates, rec)
	}
	raw, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", names.SidecarStatusAnnotation, err)
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[names.SidecarStatusAnnotation] = string(raw)
	*pod = *p
	return res, nil
}

// stillPresent reports whether the pod has every container a status record names.
func stillPresent(p *corev1.Pod, rec *Injected) bool {
	for _, n := range rec.Containers {
		if !slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == n }) {
			return false
		}
	}
	for _, n := range rec.InitContainers {
		if !slices.ContainsFunc(p.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == n }) {
			return false
		}
	}
	return true
}

// containerIn says which list of the pod has a container of that name, or "".
func containerIn(p *corev1.Pod, name string) string {
	has := func(cs []corev1.Container) bool {
		return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	}
	switch {
	case has(p.Spec.Containers):
		return "containers"
	case has(p.Spec.InitContainers):
		return "initContainers"
	case slices.ContainsFunc(p.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == name }):
		return "ephemeralContainers"
	}
	return ""
}
