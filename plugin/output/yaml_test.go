package output

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// yamlStrings are values whose plain form yaml/v2 reads as something else, or which are close to
// such a value, or which jsonToYAML leaves to yaml/v2.
var yamlStrings = []string{
	"", "a", "node-1", "scale-pod-000001", "kube-system", "10.0.0.1", "ip-10-0-0-1.ec2.internal",
	"100m", "250m", "2", "0", "-1", "1.5", "1.", ".5", "1e3", "1E3", "1e", "1E", "1e400", "1Ei", "512Mi",
	"128Gi", "1k", "007", "08", "0x1F", "0x", "0o17", "0b101", "0b", "0b2", "9223372036854775808",
	"18446744073709551616", "2024-01-02", "2024-1-2", "1234-x", "12345-6", "y", "Y", "yes", "n", "no",
	"NO", "on", "Off", "true", "True", "tRUE", "false", "null", "Null", "nULL", "~", ".inf", "-.inf",
	".nan", "<<", "---", "...", "-", "-a", "a-", "a.b", "a/b", "/a", "p95", "static", "usage",
	"has space", "colon: here", "a:b", "#x", "x #y", "quote\"d", "it's", "line\nbreak", "tab\there",
	"é", "ünïcode-näme", "[x]", "{x}", "&a", "*a", "!a", "|", ">", "%", "@", "`", ",",
	"a very long string that yaml/v2 folds at its best width of eighty columns when it is written plain",
	"averylongstringwithoutanyspacesthatgoesonandonpastthewidthofeightycolumnswithoutbreaking",
}

var yamlKeys = []string{strings.Repeat("k", maxSimpleKey), strings.Repeat("k", maxSimpleKey+1), "name", "cpu", "memory", "podList", "usagePercentOfRequests", "Upper", "a",
	"y", "on", "Null", "key1", "key10", "key2", "with space", "a-b", "10", "2"}

// randomValue builds a JSON value of the reports' kinds, and of kinds they do not have, so that
// both of jsonToYAML's paths are compared with yaml/v2.
func randomValue(r *rand.Rand, depth int) any {
	n := r.IntN(10)
	if depth > 3 {
		n = r.IntN(6)
	}
	switch n {
	case 0:
		return yamlStrings[r.IntN(len(yamlStrings))]
	case 1:
		return json.Number([]string{"0", "-0", "1", "-5", "42", "9223372036854775807",
			"9223372036854775808", "18446744073709551615", "18446744073709551616", "1.5", "1e3", "-0.0"}[r.IntN(12)])
	case 2:
		return r.IntN(2) == 0
	case 3:
		return nil
	case 4, 5:
		return yamlStrings[r.IntN(12)]
	case 6, 7, 8:
		m := map[string]any{}
		for range r.IntN(5) {
			m[yamlKeys[r.IntN(len(yamlKeys))]] = randomValue(r, depth+1)
		}
		return m
	default:
		s := []any{}
		for range r.IntN(4) {
			s = append(s, randomValue(r, depth+1))
		}
		return s
	}
}

// TestJSONToYAMLMatchesYAMLv2 compares jsonToYAML with sigs.k8s.io/yaml's JSONToYAML, which the
// plugin's YAML output has always been, on random documents: both the values jsonToYAML writes
// itself and those it hands to yaml/v2.
func TestJSONToYAMLMatchesYAMLv2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	direct := 0
	for i := range 20000 {
		j, err := json.Marshal(randomValue(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		compareYAML(t, j)
		if _, ok := decodedPlainYAML(t, j); ok {
			direct++
		}
		if t.Failed() {
			t.Fatalf("document %d: %s", i, j)
		}
	}
	// The comparison means little if one path is never taken.
	if direct < 2000 || direct > 18000 {
		t.Errorf("%d of 20000 documents written directly; want both paths well exercised", direct)
	}
}

func TestJSONToYAMLDirect(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		direct     bool
	}{
		{"report element", `{"name":"node-1","enabled":true,"pods":3,"cpu":{"raw":"4","allocatable":"8","extra":"4","usage":"1500m"},"podList":[{"namespace":"default","name":"web-0","cpu":{"requests":"250m"}}]}`, true},
		{"empty collections", `{"a":{},"b":[],"c":[{}],"d":[[]]}`, false},
		{"nested in sequence", `[{"a":{"b":[{"c":"on"}]}},"x",1,null]`, true},
		{"float", `{"a":1.5}`, false},
		{"spaced string", `{"a":"b c"}`, false},
		{"timestamp-like", `{"a":"2024-01-02"}`, false},
		{"quoted numbers and words", `{"a":"2","b":"yes","c":"0x1F","d":"1e3","e":"1E"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareYAML(t, []byte(tc.json))
			if _, ok := decodedPlainYAML(t, []byte(tc.json)); ok != tc.direct {
				t.Errorf("written directly: %v, want %v", ok, tc.direct)
			}
		})
	}
}

func compareYAML(t *testing.T, j []byte) {
	t.Helper()
	want, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatalf("sigs.k8s.io/yaml: %v", err)
	}
	got, err := jsonToYAML(j)
	if err != nil {
		t.Fatalf("jsonToYAML: %v", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("jsonToYAML(%s) differs from sigs.k8s.io/yaml (-want +got):\n%s", j, d)
	}
}

func decodedPlainYAML(t *testing.T, j []byte) ([]byte, bool) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return plainYAML(v)
}

// FuzzJSONToYAML holds jsonToYAML to sigs.k8s.io/yaml's output on any JSON document.
func FuzzJSONToYAML(f *testing.F) {
	for _, s := range yamlStrings {
		j, _ := json.Marshal(map[string]any{"name": s, "list": []any{s, map[string]any{"k": s}}})
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, j []byte) {
		if !json.Valid(j) {
			return
		}
		want, err := yaml.JSONToYAML(j)
		if err != nil {
			return
		}
		got, err := jsonToYAML(j)
		if err != nil {
			t.Fatalf("jsonToYAML(%q): %v, while sigs.k8s.io/yaml converts it", j, err)
		}
		if d := cmp.Diff(string(want), string(got)); d != "" {
			t.Errorf("jsonToYAML(%q) differs from sigs.k8s.io/yaml (-want +got):\n%s", j, d)
		}
	})
}
