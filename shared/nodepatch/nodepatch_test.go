package nodepatch

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
)

// TestMarshalMatchesEncodingJSON: Marshal writes string values by hand and must write what
// encoding/json writes (the plugin's golden files and the webhook's responses use it).
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	for name, ops := range map[string][]jsonpatch.Operation{
		"empty": {},
		"strings": {
			jsonpatch.NewOperation("add", "/status/allocatable/cpu", "7800m"),
			jsonpatch.NewOperation("add", "/metadata/annotations/overcommit.dev~1applied", `{"policy":"static","cpuRatio":"2"}`),
			jsonpatch.NewOperation("add", "/x", ""),
		},
		"map and remove": {
			jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{"b": "<2>", "a": "1"}),
			jsonpatch.NewOperation("remove", "/metadata/labels/a", nil),
		},
	} {
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-encoding/json +Marshal):\n%s", name, diff)
		}
	}
	if got, _ := Marshal(nil); string(got) != "[]" {
		t.Errorf("Marshal(nil) = %s, want []", got)
	}
}
