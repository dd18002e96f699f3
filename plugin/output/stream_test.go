package output

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStreamTable: StreamTable prints what Table prints, cell for cell: random tables of the
// characters kubectl's cells are made of (blanks inside and in front, empty cells, empty
// columns at the end), and tables Table alone can print (a newline, a tab, a wide character, a
// short row), which StreamTable hands to it.
func TestStreamTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab-/%<> 0"
	cell := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		b := make([]byte, 1+rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	type table struct {
		header []string
		rows   [][]string
		footer []string
	}
	var tables []table
	for range 200 {
		cols := 1 + rng.IntN(6)
		row := func() []string {
			r := make([]string, cols)
			for i := range r {
				r[i] = cell()
			}
			return r
		}
		tb := table{header: row()}
		tb.header[0] = "NAME" // Table prints nothing for a table without a header.
		for range rng.IntN(8) {
			tb.rows = append(tb.rows, row())
		}
		if rng.IntN(2) == 0 {
			tb.footer = row()
			tb.footer[0] = "TOTAL"
		}
		tables = append(tables, tb)
	}
	for _, odd := range []string{"two\nlines", "a\tb", "日本", "é"} {
		tables = append(tables, table{header: []string{"NAME", "VALUE"}, rows: [][]string{{"a", odd}, {"b", "c"}}, footer: []string{"TOTAL", "1"}})
	}
	tables = append(tables, table{header: []string{"NAME", "VALUE"}, rows: [][]string{{"a"}, {"b", "c"}}})
	for i, tb := range tables {
		var want, got bytes.Buffer
		if err := Table(&want, tb.header, tb.rows, tb.footer); err != nil {
			t.Fatal(err)
		}
		calls := 0
		rows := func(row func([]string) error) error {
			calls++
			// The same slice for every row, as callers that make rows on the fly pass.
			var cells []string
			for _, r := range tb.rows {
				cells = append(cells[:0], r...)
				if err := row(cells); err != nil {
					return err
				}
			}
			return nil
		}
		if err := StreamTable(&got, tb.header, rows, tb.footer); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("table %d %q (-Table +StreamTable):\n%s", i, tb, diff)
		}
		if calls != 2 {
			t.Errorf("table %d: rows made %d times, want 2", i, calls)
		}
	}
}

func TestStreamTableError(t *testing.T) {
	boom := errors.New("boom")
	err := StreamTable(&bytes.Buffer{}, []string{"NAME"}, func(func([]string) error) error { return boom }, nil)
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want the rows' error", err)
	}
}

type listItem struct {
	Name  string            `json:"name"`
	Note  string            `json:"note,omitempty"`
	Items []string          `json:"items,omitempty"`
	Map   map[string]string `json:"map,omitempty"`
	N     int               `json:"n"`
}

// listReport has its list in the middle of its keys, as the savings report does, and keys
// sorting before and after it in YAML.
type listReport struct {
	Kind  string     `json:"kind"`
	Zeta  []string   `json:"zeta,omitempty"`
	List  []listItem `json:"list"`
	After listItem   `json:"after"`
	Alpha string     `json:"alpha"`
}

// streamed is listReport as an output.List.
type streamed struct{ listReport }

func (s *streamed) EncodedList() (any, string, int, func(int) any) {
	rest := s.listReport
	rest.List = nil
	return &rest, "list", len(s.List), func(i int) any { return &s.List[i] }
}

// TestEncodeList: a List encodes to the same bytes as the whole document, in both formats,
// whatever its elements hold: HTML characters JSON escapes, long strings YAML folds at the same
// column only if indented as in the whole document, newlines, nested lists and maps; and an
// empty list.
func TestEncodeList(t *testing.T) {
	long := strings.Repeat("word ", 30)
	items := []listItem{
		{Name: "a", N: 1},
		{Name: "<b> & c", Note: long, Items: []string{"x", long, "multi\nline"}, Map: map[string]string{"k": long, "a": "b"}, N: -2},
		{Name: "list: null", Note: "nodes: null\nlist: null"},
	}
	for _, r := range []listReport{
		{Kind: "K", List: items, After: listItem{Name: "after", Note: long}, Alpha: "first", Zeta: []string{"z"}},
		{Kind: "K", List: items[:1]},
		{Kind: "K", List: []listItem{}, Alpha: "list: null"},
	} {
		for _, format := range []string{FormatJSON, FormatYAML} {
			var want, got bytes.Buffer
			if err := Encode(&want, format, r); err != nil {
				t.Fatal(err)
			}
			if err := Encode(&got, format, &streamed{r}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("%s of %d items (-whole +streamed):\n%s", format, len(r.List), diff)
			}
		}
	}
	if err := Encode(&bytes.Buffer{}, "xml", &streamed{}); err == nil {
		t.Error("xml accepted")
	}
}
