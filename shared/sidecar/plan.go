package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Plan is an injection worked out against a pod's view: what is added, and where. Apply carries
// it out on a typed pod (the plugin's inject); Patch writes it as a JSON patch (the webhook).
// Both come from the one plan, so the webhook's patch and the plugin's injected pod cannot
// disagree, and the webhook never has to decode a whole pod or diff two of them.
//
// Placement: classic sidecars are appended to spec.containers. Template init containers, then
// native sidecars, go before the pod's own init containers, so those already run with the
// sidecar (the point of native sidecars). Env and volume mounts go to the pod's own containers
// (not init containers, not injected sidecars); a variable the container sets itself keeps its
// value.
//
// Injection is idempotent: a template the status annotation records, whose containers the pod
// still has, is left alone.
type Plan struct {
	Result

	view *PodView
	// initAt is where the new init containers go: after those injected by earlier passes.
	initAt   int
	inits    []corev1.Container
	sidecars []corev1.Container
	volumes  []corev1.Volume
	// env and mounts are what each of the pod's containers gets, by container index.
	env         [][]corev1.EnvVar
	mounts      [][]corev1.VolumeMount
	pullSecrets []string
	// status is the new status annotation; "" when nothing is injected.
	status string
}

// NewPlan plans the injection of the templates, in order, into the pod the view was read from.
// On any conflict it returns the errors of every template: a pod gets all the templates it
// asked for or none. Its work grows with the pod (every template visits every container), so it
// stops when ctx is done.
func NewPlan(ctx context.Context, v *PodView, templates []*Template) (*Plan, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("planning the injection: %w", context.Cause(ctx))
	}
	status, err := parseStatus(v.Status)
	if err != nil {
		return nil, err
	}
	pp := newPlanner(v, status)
	pl := pp.plan
	var records []Injected
	for _, t := range templates {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("planning the injection: %w", context.Cause(ctx))
		}
		if rec := status.find(t.Name); rec != nil && v.stillPresent(rec) {
			pl.Present = append(pl.Present, t.Name)
			continue
		}
		if t.SkipHostNetwork && v.HostNetwork {
			pl.Skipped = append(pl.Skipped, Skip{Template: t.Name, Reason: "the pod uses hostNetwork and the template sets skipHostNetwork"})
			continue
		}
		records = append(records, pp.add(t))
		pl.Injected = append(pl.Injected, t.Name)
	}
	if len(pp.errs) > 0 {
		return nil, errors.Join(pp.errs...)
	}
	if len(records) == 0 {
		return pl, nil
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
	pl.status = string(raw)
	return pl, nil
}

// planner is NewPlan's state while it adds one template after another.
type planner struct {
	plan *Plan
	view *PodView
	// injected maps the containers injected by earlier passes (sidecars, not the pod's own) to
	// the template that injected them.
	injected map[string]string
	// own are the indexes of the pod's own containers.
	own []int
	// thisPass maps a container or volume key to the template injecting it now.
	thisPass map[string]string
	errs     []error
}

func newPlanner(v *PodView, status *Status) *planner {
	pp := &planner{
		plan: &Plan{
			view:   v,
			env:    make([][]corev1.EnvVar, len(v.Containers)),
			mounts: make([][]corev1.VolumeMount, len(v.Containers)),
		},
		view:     v,
		injected: map[string]string{},
		thisPass: map[string]string{},
	}
	for _, rec := range status.Templates {
		for _, n := range slices.Concat(rec.Containers, rec.InitContainers) {
			pp.injected[n] = rec.Name
		}
	}
	for i, c := range v.Containers {
		if _, ok := pp.injected[c.Name]; !ok {
			pp.own = append(pp.own, i)
		}
	}
	for pp.plan.initAt < len(v.InitContainers) {
		if _, ok := pp.injected[v.InitContainers[pp.plan.initAt]]; !ok {
			break
		}
		pp.plan.initAt++
	}
	return pp
}

// add plans one template, recording its conflicts in pp.errs, and returns its status record.
func (pp *planner) add(t *Template) Injected {
	pl := pp.plan
	rec := Injected{Name: t.Name}
	inits, sidecars := containersOf(t)
	pp.checkContainers(t.Name, slices.Concat(inits, sidecars))
	rec.Volumes = pp.addVolumes(t)
	pp.addToOwnContainers(t)
	for _, s := range t.ImagePullSecrets {
		if !slices.Contains(pp.view.ImagePullSecrets, s.Name) && !slices.Contains(pl.pullSecrets, s.Name) {
			pl.pullSecrets = append(pl.pullSecrets, s.Name)
		}
	}
	pl.inits = append(pl.inits, inits...)
	pl.sidecars = append(pl.sidecars, sidecars...)
	for _, c := range inits {
		rec.InitContainers = append(rec.InitContainers, c.Name)
	}
	for _, c := range sidecars {
		rec.Containers = append(rec.Containers, c.Name)
	}
	return rec
}

func (pp *planner) conflict(template, format string, args ...any) {
	pp.errs = append(pp.errs, &ConflictError{Template: template, Reason: fmt.Sprintf(format, args...)})
}

// containersOf returns copies of the template's init containers and sidecars as injected: a
// native template's sidecars become init containers with restartPolicy Always, after its own
// init containers.
func containersOf(t *Template) (inits, sidecars []corev1.Container) {
	sidecars = make([]corev1.Container, len(t.Containers))
	for i := range t.Containers {
		sidecars[i] = *t.Containers[i].DeepCopy()
		if t.Native {
			sidecars[i].RestartPolicy = new(corev1.ContainerRestartPolicyAlways)
		}
	}
	inits = make([]corev1.Container, 0, len(t.InitContainers)+len(sidecars))
	for i := range t.InitContainers {
		inits = append(inits, *t.InitContainers[i].DeepCopy())
	}
	if t.Native {
		inits = append(inits, sidecars...)
		sidecars = nil
	}
	return inits, sidecars
}

// checkContainers finds the containers whose names clash with the pod's, an earlier pass's or
// another template's of this pass.
func (pp *planner) checkContainers(template string, containers []corev1.Container) {
	for _, c := range containers {
		if other, ok := pp.thisPass["container/"+c.Name]; ok {
			pp.conflict(template, "container %q is also injected by template %q", c.Name, other)
		} else if where := pp.view.containerIn(c.Name); where != "" {
			if by, ok := pp.injected[c.Name]; ok {
				pp.conflict(template, "container %q clashes with container %q that template %q injected earlier (%s)", c.Name, c.Name, by, where)
			} else {
				pp.conflict(template, "container %q clashes with the pod's own container %q (%s)", c.Name, c.Name, where)
			}
		}
		pp.thisPass["container/"+c.Name] = template
	}
}

// addVolumes adds the template's volumes the pod does not have yet and returns their names; an
// identical volume already there (the pod's or another template's) is shared, a different one
// of the same name is a conflict.
func (pp *planner) addVolumes(t *Template) []string {
	pl, v := pp.plan, pp.view
	var added []string
	for i := range t.Volumes {
		tv := &t.Volumes[i]
		if j := slices.IndexFunc(v.Volumes, func(pv VolumeView) bool { return pv.Name == tv.Name }); j >= 0 {
			pv, err := v.Volumes[j].decode()
			switch {
			case err != nil:
				pp.errs = append(pp.errs, err)
			case !equality.Semantic.DeepEqual(*pv, *tv):
				pp.conflict(t.Name, "volume %q clashes with the pod's own volume %q", tv.Name, tv.Name)
			}
			// The same volume is already there (another template's, or the pod's): share it.
			continue
		}
		if j := slices.IndexFunc(pl.volumes, func(pv corev1.Volume) bool { return pv.Name == tv.Name }); j >= 0 {
			if !equality.Semantic.DeepEqual(pl.volumes[j], *tv) {
				pp.conflict(t.Name, "volume %q differs from the volume of that name injected by template %q", tv.Name, pp.thisPass["volume/"+tv.Name])
			}
			continue
		}
		pl.volumes = append(pl.volumes, *tv.DeepCopy())
		added = append(added, tv.Name)
		pp.thisPass["volume/"+tv.Name] = t.Name
	}
	return added
}

// addToOwnContainers gives each of the pod's own containers the template's env (a variable the
// container sets keeps its value) and volume mounts (a mount path taken by another volume is a
// conflict).
func (pp *planner) addToOwnContainers(t *Template) {
	pl := pp.plan
	for _, ci := range pp.own {
		c := &pp.view.Containers[ci]
		for i := range t.Env {
			e := &t.Env[i]
			if !slices.Contains(c.Env, e.Name) && !slices.ContainsFunc(pl.env[ci], func(a corev1.EnvVar) bool { return a.Name == e.Name }) {
				pl.env[ci] = append(pl.env[ci], *e.DeepCopy())
			}
		}
		for i := range t.VolumeMounts {
			m := &t.VolumeMounts[i]
			there := ""
			if j := slices.IndexFunc(c.Mounts, func(cm MountView) bool { return cm.MountPath == m.MountPath }); j >= 0 {
				there = c.Mounts[j].Name
			} else if j := slices.IndexFunc(pl.mounts[ci], func(cm corev1.VolumeMount) bool { return cm.MountPath == m.MountPath }); j >= 0 {
				there = pl.mounts[ci][j].Name
			}
			switch {
			case there == "":
				pl.mounts[ci] = append(pl.mounts[ci], *m.DeepCopy())
			case there != m.Name:
				pp.conflict(t.Name, "volumeMount of %q at %s clashes with container %q's mount of volume %q there", m.Name, m.MountPath, c.Name, there)
			}
		}
	}
}

// Apply carries the plan out on the pod its view was read from. It replaces the slices and the
// annotation map it changes rather than writing into them, so other references to the pod's
// parts see no change.
func (pl *Plan) Apply(p *corev1.Pod) {
	if !pl.Changed() {
		return
	}
	s := &p.Spec
	s.InitContainers = slices.Insert(slices.Clone(s.InitContainers), pl.initAt, pl.inits...)
	s.Containers = slices.Clone(s.Containers)
	for i := range pl.env {
		c := &s.Containers[i]
		if len(pl.env[i]) > 0 {
			c.Env = append(slices.Clip(c.Env), pl.env[i]...)
		}
		if len(pl.mounts[i]) > 0 {
			c.VolumeMounts = append(slices.Clip(c.VolumeMounts), pl.mounts[i]...)
		}
	}
	s.Containers = append(s.Containers, pl.sidecars...)
	if len(pl.volumes) > 0 {
		s.Volumes = append(slices.Clip(s.Volumes), pl.volumes...)
	}
	for _, n := range pl.pullSecrets {
		s.ImagePullSecrets = append(slices.Clip(s.ImagePullSecrets), corev1.LocalObjectReference{Name: n})
	}
	p.Annotations = maps.Clone(p.Annotations)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[names.SidecarStatusAnnotation] = pl.status
}

// stillPresent reports whether the pod has every container a status record names.
func (v *PodView) stillPresent(rec *Injected) bool {
	for _, n := range rec.Containers {
		if !slices.ContainsFunc(v.Containers, func(c ContainerView) bool { return c.Name == n }) {
			return false
		}
	}
	for _, n := range rec.InitContainers {
		if !slices.Contains(v.InitContainers, n) {
			return false
		}
	}
	return true
}

// containerIn says which list of the pod has a container of that name, or "".
func (v *PodView) containerIn(name string) string {
	switch {
	case slices.ContainsFunc(v.Containers, func(c ContainerView) bool { return c.Name == name }):
		return "containers"
	case slices.Contains(v.InitContainers, name):
		return "initContainers"
	case slices.Contains(v.EphemeralContainers, name):
		return "ephemeralContainers"
	}
	return ""
}
