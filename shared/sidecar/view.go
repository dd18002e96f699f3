package sidecar

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// PodView is what injection reads of a pod: names, the two annotations and the few fields it
// checks for clashes. The webhook fills it straight from the admission request's bytes without
// decoding the pod; ViewOf fills it from a typed pod. Both then plan the same injection.
type PodView struct {
	// Inject and Status are the values of the inject and status annotations ("" if absent).
	Inject, Status string
	// Annotations is how many annotations the pod has; with none, the patch adds the map.
	Annotations int
	HostNetwork bool
	Containers  []ContainerView
	// InitContainers and EphemeralContainers are container names, in order.
	InitContainers      []string
	EphemeralContainers []string
	Volumes             []VolumeView
	// ImagePullSecrets are secret names, in order.
	ImagePullSecrets []string
}

// ContainerView is what injection reads of one of the pod's containers.
type ContainerView struct {
	Name string
	// Env are the names of the container's variables.
	Env    []string
	Mounts []MountView
}

// MountView is one volume mount of a container.
type MountView struct{ Name, MountPath string }

// VolumeView is one of the pod's volumes: its name, and the volume itself either decoded or as
// the JSON it came in. A volume is only ever decoded when a template brings one of the same
// name, to tell a shared volume from a clash.
type VolumeView struct {
	Name   string
	Volume *corev1.Volume
	JSON   []byte
}

func (v *VolumeView) decode() (*corev1.Volume, error) {
	if v.Volume != nil {
		return v.Volume, nil
	}
	var vol corev1.Volume
	if err := json.Unmarshal(v.JSON, &vol); err != nil {
		return nil, fmt.Errorf("decoding the pod's volume %q: %w", v.Name, err)
	}
	return &vol, nil
}

// ViewOf is the view of a typed pod. The view points into the pod; change neither while the
// view is in use.
func ViewOf(p *corev1.Pod) *PodView {
	v := &PodView{
		Inject:      p.Annotations[names.SidecarInjectAnnotation],
		Status:      p.Annotations[names.SidecarStatusAnnotation],
		Annotations: len(p.Annotations),
		HostNetwork: p.Spec.HostNetwork,
	}
	v.Containers = make([]ContainerView, len(p.Spec.Containers))
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		cv := ContainerView{Name: c.Name}
		for _, e := range c.Env {
			cv.Env = append(cv.Env, e.Name)
		}
		for _, m := range c.VolumeMounts {
			cv.Mounts = append(cv.Mounts, MountView{Name: m.Name, MountPath: m.MountPath})
		}
		v.Containers[i] = cv
	}
	for _, c := range p.Spec.InitContainers {
		v.InitContainers = append(v.InitContainers, c.Name)
	}
	for _, c := range p.Spec.EphemeralContainers {
		v.EphemeralContainers = append(v.EphemeralContainers, c.Name)
	}
	for i := range p.Spec.Volumes {
		v.Volumes = append(v.Volumes, VolumeView{Name: p.Spec.Volumes[i].Name, Volume: &p.Spec.Volumes[i]})
	}
	for _, s := range p.Spec.ImagePullSecrets {
		v.ImagePullSecrets = append(v.ImagePullSecrets, s.Name)
	}
	return v
}
