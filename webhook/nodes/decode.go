package nodes

import (
	"errors"
	"fmt"

	jsoniter "github.com/json-iterator/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

var jsonConfig = jsoniter.ConfigCompatibleWithStandardLibrary

// decodeNode reads a Node's JSON in one pass. Field names match exactly, as the apiserver writes
// them: encoding/json's case-insensitive matching would read "Metadata" as metadata, and a patch
// computed from it would not apply to the real document.
func decodeNode(data []byte) (node, error) {
	var n node
	it := jsonConfig.BorrowIterator(data)
	defer jsonConfig.ReturnIterator(it)
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return n, errors.New("object is not a JSON object")
	}
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		switch field {
		case "metadata":
			readObject(it, func(it *jsoniter.Iterator, field string) {
				switch field {
				case "name":
					n.Name = readString(it)
				case "labels":
					n.Labels = readStringMap(it)
				case "annotations":
					n.Annotations = readStringMap(it)
				default:
					it.Skip()
				}
			})
		case "status":
			readObject(it, func(it *jsoniter.Iterator, field string) {
				switch field {
				case "allocatable":
					n.Allocatable = readResourceList(it)
				case "capacity":
					n.Capacity = readResourceList(it)
				default:
					it.Skip()
				}
			})
		default:
			it.Skip()
		}
		return it.Error == nil
	})
	if it.Error != nil {
		return node{}, it.Error
	}
	return n, nil
}

// readObject calls f for each field of an object; null reads as an empty object.
func readObject(it *jsoniter.Iterator, f func(*jsoniter.Iterator, string)) {
	switch it.WhatIsNext() {
	case jsoniter.NilValue:
		it.Skip()
	case jsoniter.ObjectValue:
		it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
			f(it, field)
			return it.Error == nil
		})
	default:
		it.ReportError("read object", "expected an object")
	}
}

func readString(it *jsoniter.Iterator) string {
	if it.WhatIsNext() != jsoniter.StringValue {
		it.ReportError("read string", "expected a string")
		return ""
	}
	return it.ReadString()
}

// readStringMap reads a map of strings; null reads as nil, {} as an empty map.
func readStringMap(it *jsoniter.Iterator) map[string]string {
	if it.WhatIsNext() == jsoniter.NilValue {
		it.Skip()
		return nil
	}
	m := map[string]string{}
	readObject(it, func(it *jsoniter.Iterator, k string) { m[k] = readString(it) })
	return m
}

func readResourceList(it *jsoniter.Iterator) corev1.ResourceList {
	if it.WhatIsNext() == jsoniter.NilValue {
		it.Skip()
		return nil
	}
	l := corev1.ResourceList{}
	readObject(it, func(it *jsoniter.Iterator, k string) {
		s := readString(it)
		if it.Error != nil {
			return
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			it.ReportError("read quantity", fmt.Sprintf("%s: %q: %v", k, s, err))
			return
		}
		l[corev1.ResourceName(k)] = q
	})
	return l
}
