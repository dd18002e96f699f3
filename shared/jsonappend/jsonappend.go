// Package jsonappend appends JSON to byte slices, byte for byte as encoding/json writes it, for
// the few small shapes on the webhooks' hottest paths (patch operations, the node annotations,
// the review response), where encoding/json's reflection costs more than the content.
package jsonappend

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// String appends s as encoding/json.Marshal writes a string, HTML-safe escaping included.
func String(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			// Control characters, non-ASCII and HTML characters are rare here; encoding/json
			// knows their escapes (and what to do with invalid UTF-8).
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', c)
			start = i + 1
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ResourceList appends a resource list as encoding/json writes it: null when nil, keys sorted,
// quantities in canonical form.
func ResourceList(dst []byte, l corev1.ResourceList) []byte {
	if l == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	for i, name := range slices.Sorted(maps.Keys(l)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		q := l[name]
		dst = String(dst, string(name))
		dst = append(dst, ':')
		dst = String(dst, q.String())
	}
	return append(dst, '}')
}

// PointerToken escapes a JSON pointer reference token (RFC 6901), as a patch path needs it for
// a label or annotation key: "~" as "~0", "/" as "~1".
func PointerToken(s string) string { return pointerEscaper.Replace(s) }

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
