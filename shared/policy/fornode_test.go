package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestForNode pins how a node's policy annotation resolves, and that Compute applies (and warns
// about) exactly that: an unknown value, in any case, is static with a warning, as the webhook
// stores it. The plugin resolves through ForNode, so its previews and reports agree.
func TestForNode(t *testing.T) {
	type got struct {
		Name    string
		Known   bool
		Applied string
		Warned  bool
	}
	for _, c := range []struct {
		name string
		ann  map[string]string
		want got
	}{
		{"no annotations", nil, got{"static", true, "static", false}},
		{"absent", map[string]string{"other": "usage"}, got{"static", true, "static", false}},
		{"empty", map[string]string{names.PolicyAnnotation: ""}, got{"static", true, "static", false}},
		{"static", map[string]string{names.PolicyAnnotation: "static"}, got{"static", true, "static", false}},
		{"usage", map[string]string{names.PolicyAnnotation: "usage"}, got{"usage", true, "usage", false}},
		{"mixed case usage", map[string]string{names.PolicyAnnotation: "Usage"}, got{"static", false, "static", true}},
		{"upper case usage", map[string]string{names.PolicyAnnotation: "USAGE"}, got{"static", false, "static", true}},
		{"mixed case static", map[string]string{names.PolicyAnnotation: "Static"}, got{"static", false, "static", true}},
		{"padded usage", map[string]string{names.PolicyAnnotation: " usage"}, got{"static", false, "static", true}},
		{"unknown", map[string]string{names.PolicyAnnotation: "dynamic"}, got{"static", false, "static", true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g got
			g.Name, g.Known = ForNode(c.ann)
			res := Compute(Input{Node: node(c.ann), Now: now}, DefaultSettings())
			g.Applied = res.Applied.Policy
			for _, w := range res.Warnings {
				g.Warned = g.Warned || w == `unknown overcommit.dev/policy "`+c.ann[names.PolicyAnnotation]+`", using "static"`
			}
			if diff := cmp.Diff(c.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
