package nodepolicy

import (
	"fmt"
	"strings"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// patchExpression mirrors nodepatch.Operations: cpu and memory of allocatable and capacity where
// they change (never in a list the write did not carry), then the two records where they differ.
func patchExpression() string {
	var parts []string
	for _, l := range []struct{ list, in, out, moves string }{
		{"allocatable", "inAlloc", "outAlloc", "ok"},
		{"capacity", "inCap", "outCap", "capMoves"},
	} {
		for _, r := range []struct{ suffix, name string }{{"CPU", "cpu"}, {"Memory", "memory"}} {
			in, out := v(l.in+r.suffix), v(l.out+r.suffix)
			parts = append(parts, fmt.Sprintf(`(size(%s) > 0 && %s && (%s == '' || quantity(%s).compareTo(quantity(%s)) != 0) ? [JSONPatch{op: "add", path: "/status/%s/%s", value: %s}] : [])`,
				v(l.in), v(l.moves+r.suffix), in, in, out, l.list, r.name, out))
		}
	}
	records := fmt.Sprintf(`(%s != '' || %s != '')`, v("outAllocCPU"), v("outAllocMemory"))
	parts = append(parts, fmt.Sprintf(`(%s && !has(object.metadata.annotations) ? [JSONPatch{op: "add", path: "/metadata/annotations", value: {%q: string(%s), %q: string(%s)}}] : [])`,
		records, names.RawAnnotation, v("rawRecord"), names.AppliedAnnotation, v("appliedRecord")))
	for _, a := range []struct{ key, value string }{{names.RawAnnotation, "rawRecord"}, {names.AppliedAnnotation, "appliedRecord"}} {
		parts = append(parts, fmt.Sprintf(`(%s && has(object.metadata.annotations) && (!(%q in object.metadata.annotations) || object.metadata.annotations[%q] != %s) ? [JSONPatch{op: "add", path: %q, value: %s}] : [])`,
			records, a.key, a.key, v(a.value), "/metadata/annotations/"+jsonappend.PointerToken(a.key), v(a.value)))
	}
	return fmt.Sprintf("%s == 'keep' ? [] :\n", v("base")) + strings.Join(parts, " +\n")
}
