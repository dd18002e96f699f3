package pods

import (
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
	"github.com/overcommit-dev/overcommit/webhook/jsonscan"
)

// podID names a pod in messages; controllers' pods have only a generateName at this point.
// It also says which annotations were too long to be read (see readBounded).
type podID struct {
	name, generateName           string
	injectTooLong, statusTooLong bool
}

// Both parts are clipped: the pod is not validated yet, and its name can be megabytes long.
func (id podID) in(ns string) string {
	name := sidecar.Clip(id.name, sidecar.MaxNameLength)
	if name == "" && id.generateName != "" {
		name = sidecar.Clip(id.generateName, sidecar.MaxNameLength) + "*"
	}
	return sidecar.Clip(ns, maxLoggedField) + "/" + name
}

// readView reads what injection needs out of the pod's JSON, in one pass that skips the rest
// (images, probes, resources, managedFields) without decoding it. A volume is kept as its JSON
// and decoded only if a template brings one of the same name.
func readView(raw []byte) (*sidecar.PodView, podID, error) {
	v := &sidecar.PodView{}
	var id podID
	sc := jsonscan.New(raw)
	sc.Object(func(key []byte) {
		switch string(key) {
		case "metadata":
			sc.Object(func(key []byte) {
				switch string(key) {
				case "name":
					id.name = sc.StringOrNull()
				case "generateName":
					id.generateName = sc.StringOrNull()
				case "annotations":
					sc.Object(func(key []byte) {
						v.Annotations++
						switch string(key) {
						case names.SidecarInjectAnnotation:
							v.Inject, id.injectTooLong = readBounded(sc, sidecar.MaxRequestedBytes)
						case names.SidecarStatusAnnotation:
							v.Status, id.statusTooLong = readBounded(sc, sidecar.MaxStatusBytes)
						default:
							sc.Skip()
						}
					})
				default:
					sc.Skip()
				}
			})
		case "spec":
			readSpec(sc, v)
		default:
			sc.Skip()
		}
	})
	return v, id, sc.End()
}

// maxEscapedBytes is the most JSON one byte of a decoded string takes: an escape such as \u0000
// is six bytes for one.
const maxEscapedBytes = 6

// readBounded reads a string value whose decoded length has a limit. A value whose JSON is so
// long that it must exceed the limit is skipped (a vectorised scan for its closing quote) rather
// than decoded and copied: the caller refuses it either way, and an annotation can be megabytes
// before the apiserver has validated the pod.
func readBounded(sc *jsonscan.Scanner, limit int) (value string, tooLong bool) {
	if sc.Peek() != '"' {
		return sc.StringOrNull(), false // null, or the error of a value that is not a string
	}
	raw := sc.Raw()
	if sc.Err() != nil {
		return "", false
	}
	if len(raw) > maxEscapedBytes*limit+len(`""`) {
		return "", true
	}
	in := jsonscan.New(raw)
	value = in.StringOrNull()
	if err := in.End(); err != nil {
		sc.Fail(err)
		return "", false
	}
	return value, len(value) > limit
}

func readSpec(sc *jsonscan.Scanner, v *sidecar.PodView) {
	sc.Object(func(key []byte) {
		switch string(key) {
		case "hostNetwork":
			v.HostNetwork = !sc.Null() && sc.Bool()
		case "containers":
			sc.Array(func() { v.Containers = append(v.Containers, readContainer(sc)) })
		case "initContainers":
			sc.Array(func() { v.InitContainers = append(v.InitContainers, nameOf(sc)) })
		case "ephemeralContainers":
			sc.Array(func() { v.EphemeralContainers = append(v.EphemeralContainers, nameOf(sc)) })
		case "imagePullSecrets":
			sc.Array(func() { v.ImagePullSecrets = append(v.ImagePullSecrets, nameOf(sc)) })
		case "volumes":
			sc.Array(func() {
				var name string
				raw := sc.Capture(func() { name = nameOf(sc) })
				v.Volumes = append(v.Volumes, sidecar.VolumeView{Name: name, JSON: raw})
			})
		default:
			sc.Skip()
		}
	})
}

func readContainer(sc *jsonscan.Scanner) sidecar.ContainerView {
	var c sidecar.ContainerView
	sc.Object(func(key []byte) {
		switch string(key) {
		case "name":
			c.Name = sc.StringOrNull()
		case "env":
			sc.Array(func() { c.Env = append(c.Env, nameOf(sc)) })
		case "volumeMounts":
			sc.Array(func() {
				var m sidecar.MountView
				sc.Object(func(key []byte) {
					switch string(key) {
					case "name":
						m.Name = sc.StringOrNull()
					case "mountPath":
						m.MountPath = sc.StringOrNull()
					default:
						sc.Skip()
					}
				})
				c.Mounts = append(c.Mounts, m)
			})
		default:
			sc.Skip()
		}
	})
	return c
}

// nameOf reads an object's "name" member and skips the rest of it.
func nameOf(sc *jsonscan.Scanner) string {
	var name string
	sc.Object(func(key []byte) {
		if string(key) == "name" {
			name = sc.StringOrNull()
		} else {
			sc.Skip()
		}
	})
	return name
}
