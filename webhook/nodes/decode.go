package nodes

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/webhook/jsonscan"
)

// node is the part of a Node the policy reads. Decoding only these fields skips the images,
// conditions and everything else that makes up most of a Node's bytes.
type node struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Allocatable corev1.ResourceList
	Capacity    corev1.ResourceList
}

// decodeNode reads a Node's JSON in one pass. Field names match exactly, as the apiserver writes
// them: encoding/json's case-insensitive matching would read "Metadata" as metadata, and a patch
// computed from it would not apply to the real document.
func decodeNode(data []byte) (node, error) {
	var n node
	s := jsonscan.New(data)
	if s.Peek() != '{' {
		return n, jsonscan.ErrNotObject
	}
	s.Object(func(key []byte) {
		switch string(key) {
		case "metadata":
			s.Object(func(key []byte) {
				switch string(key) {
				case "name":
					n.Name = s.String()
				case "labels":
					n.Labels = readStringMap(s)
				case "annotations":
					n.Annotations = readStringMap(s)
				default:
					s.Skip()
				}
			})
		case "status":
			s.Object(func(key []byte) {
				switch string(key) {
				case "allocatable":
					n.Allocatable = readResourceList(s)
				case "capacity":
					n.Capacity = readResourceList(s)
				default:
					s.Skip()
				}
			})
		default:
			s.Skip()
		}
	})
	if err := s.End(); err != nil {
		return node{}, err
	}
	return n, nil
}

// readStringMap reads a map of strings; null reads as nil, {} as an empty map.
func readStringMap(s *jsonscan.Scanner) map[string]string {
	if s.Null() {
		return nil
	}
	m := map[string]string{}
	s.Object(func(k []byte) { m[string(k)] = s.String() })
	return m
}

func readResourceList(s *jsonscan.Scanner) corev1.ResourceList {
	if s.Null() {
		return nil
	}
	l := corev1.ResourceList{}
	s.Object(func(k []byte) {
		v := s.String()
		if s.Err() != nil {
			return
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			s.Fail(fmt.Errorf("quantity %s=%q: %w", k, v, err))
			return
		}
		l[corev1.ResourceName(k)] = q
	})
	return l
}
