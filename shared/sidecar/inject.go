package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

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
	return parseStatus(annotations[names.SidecarStatusAnnotation])
}

func parseStatus(raw string) (*Status, error) {
	if raw == "" {
		return &Status{}, nil
	}
	if len(raw) > MaxStatusBytes {
		return nil, ErrStatusTooLong
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
// An annotation over the limits is refused (see ParseRequested); every lookup error is reported
// (unknown and invalid templates alike) and the pod is left as it was.
func InjectRequested(pod *corev1.Pod, lookup func(name string) (*Template, error)) (*Result, error) {
	requested, err := ParseRequested(pod.Annotations[names.SidecarInjectAnnotation])
	if err != nil {
		return nil, err
	}
	templates, err := LookupRequested(context.Background(), requested, lookup)
	if err != nil {
		return nil, err
	}
	if len(templates) == 0 {
		return &Result{}, nil
	}
	return Inject(pod, templates)
}

// Inject adds the templates to the pod, in order, and records them in the status annotation
// (see Plan for the rules). On any conflict it returns the errors of every template and leaves
// the pod unchanged.
func Inject(pod *corev1.Pod, templates []*Template) (*Result, error) {
	plan, err := NewPlan(context.Background(), ViewOf(pod), templates)
	if err != nil {
		return nil, err
	}
	plan.Apply(pod)
	return &plan.Result, nil
}
