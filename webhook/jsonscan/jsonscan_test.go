package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scan reads data as the webhook reads a review: an object through Object (collected into
// maps and slices), anything else skipped.
func scan(data []byte) (any, error) {
	s := New(data)
	var got any
	if s.Peek() == '{' {
		got = collect(s)
	} else {
		s.Skip()
	}
	return got, s.End()
}

// collect reads a document into a generic value using only the scanner's primitives, so it can
// be compared with encoding/json's reading of the same bytes.
func collect(s *Scanner) any {
	switch s.Peek() {
	case '{':
		m := map[string]any{}
		s.Object(func(k []byte) { m[string(k)] = collect(s) })
		return m
	case '"':
		return s.String()
	case '[':
		a := []any{}
		s.Array(func() { a = append(a, collect(s)) })
		return a
	case 't', 'f':
		return s.Bool()
	case 'n':
		s.Null()
		return nil
	default:
		return json.RawMessage(s.Raw()) // numbers stay raw
	}
}

func TestScanner(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr string
	}{
		{name: "object", in: ` {"a": "x", "b": true, "c": null, "d": {"e": "f"}} `,
			want: map[string]any{"a": "x", "b": true, "c": nil, "d": map[string]any{"e": "f"}}},
		{name: "escapes", in: `{"a\/b": "line\nnext \u00e9 \"q\""}`, want: map[string]any{"a/b": "line\nnext é \"q\""}},
		{name: "empty", in: `{}`, want: map[string]any{}},
		{name: "arrays and numbers", in: `{"x": [1, {"y": [true, null, "z"]}, -2.5e3], "n": 42, "e": [ ]}`,
			want: map[string]any{"x": []any{json.RawMessage(`1`), map[string]any{"y": []any{true, nil, "z"}}, json.RawMessage(`-2.5e3`)},
				"n": json.RawMessage(`42`), "e": []any{}}},
		{name: "unconsumed array element", in: `{"a": [1,]}`, wantErr: "expected"},
		{name: "trailing data", in: `{} x`, wantErr: "unexpected data after the document"},
		{name: "unterminated string", in: `{"a": "b`, wantErr: "unterminated string"},
		{name: "missing colon", in: `{"a" "b"}`, wantErr: "expected ':'"},
		{name: "missing comma", in: `{"a": "b" "c": 1}`, wantErr: "expected ',' or '}'"},
		{name: "bad literal", in: `{"a": nul}`, wantErr: "expected null"},
		{name: "control character", in: "{\"a\": \"\x01\"}", wantErr: "control character"},
		{name: "unclosed array", in: `{"a": [1, 2}`, wantErr: "expected ',' or ']'"},
		{name: "deep", in: strings.Repeat("[", MaxDepth+1), wantErr: "nesting deeper than"},
		{name: "nothing", in: ``, wantErr: "unexpected end of input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scan([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSkipAllocatesNothing(t *testing.T) {
	doc := []byte(`{"images": [{"names": ["a", "b\"c"], "sizeBytes": 123}, {"names": [], "sizeBytes": 4}], "x": {"y": [true, false, null]}}`)
	s := New(nil)
	allocs := testing.AllocsPerRun(100, func() {
		s.Reset(doc)
		s.Skip()
		if s.End() != nil {
			t.Fatal(s.Err())
		}
	})
	if allocs != 0 {
		t.Errorf("Skip allocated %v times", allocs)
	}
}

// FuzzScanner: whatever encoding/json accepts, the scanner accepts and reads the same way.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":[1,2,{"c":null}],"d":"\u00e9"}`, `[]`, `"x"`, `{"":{}}`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scan(data)
		var want any
		if json.Unmarshal(data, &want) != nil {
			return // the scanner may be more lenient (numbers); it must not panic
		}
		if err != nil {
			t.Fatalf("scanner rejects valid JSON %q: %v", data, err)
		}
		if m, ok := want.(map[string]any); ok {
			// Compare member names and strings; raw parts are compared by re-decoding.
			if diff := cmp.Diff(normalize(m), normalize(got)); diff != "" {
				t.Fatalf("%q read differently (-json +scanner):\n%s", data, diff)
			}
		}
	})
}

func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case json.RawMessage:
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return "invalid: " + string(v)
		}
		return normalize(x)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

func TestCapture(t *testing.T) {
	s := New([]byte(`{"v": [ {"name": "a", "x": [1]} , {"name": "b"}]}`))
	var names, raws []string
	s.Object(func([]byte) {
		s.Array(func() {
			raws = append(raws, string(s.Capture(func() {
				s.Object(func(k []byte) {
					if string(k) == "name" {
						names = append(names, s.String())
					} else {
						s.Skip()
					}
				})
			})))
		})
	})
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`{"name": "a", "x": [1]}`, `{"name": "b"}`}, raws); diff != "" {
		t.Errorf("captured (-want +got):\n%s", diff)
	}
}

func TestStringOrNull(t *testing.T) {
	s := New([]byte(`{"a": "x", "b": null, "c": 1}`))
	got := map[string]string{}
	s.Object(func(k []byte) { got[string(k)] = s.StringOrNull() })
	if err := s.End(); err == nil || !strings.Contains(err.Error(), "expected a string") {
		t.Errorf("a number read as a string: err = %v", err)
	}
	if diff := cmp.Diff(map[string]string{"a": "x", "b": "", "c": ""}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
