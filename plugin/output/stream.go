package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Rows produces a table's rows in order, calling row once for each and returning the first
// error row returns. StreamTable calls it twice and it must produce the same rows both times;
// the slice it passes may be reused for the next row, since row keeps nothing of it.
type Rows func(row func(cells []string) error) error

// StreamTable writes the same bytes as Table, for tables too long to hold: it runs over the rows
// once to measure the columns and once more to write them, line by line through a buffer, so
// that it keeps the column widths and one line rather than every cell. Table holds each cell
// several times over; tablewriter's own streaming mode, given the widths, prints the same bytes
// without holding them, but spends as long on each row as Table does, some 80 microseconds: 12 s
// for the 155,000 rows of savings --pods at 5,000 nodes, against under a second here.
//
// The widths are byte lengths, which are display widths for printable ASCII, what kubectl's
// names and quantities are made of. A table with any other cell (a tab, a newline, a character
// wider or narrower than one column), or with a row whose length is not the header's, is handed
// to Table whole, so that it prints exactly as Table does.
func StreamTable(w io.Writer, header []string, rows Rows, footer []string) error {
	widths := make([]int, len(header))
	plain := measure(widths, header)
	if plain {
		err := rows(func(cells []string) error {
			if !measure(widths, cells) {
				plain = false
				return errNotPlain
			}
			return nil
		})
		if err != nil && !errors.Is(err, errNotPlain) {
			return err
		}
	}
	if plain && footer != nil {
		plain = measure(widths, footer)
	}
	if !plain {
		var all [][]string
		if err := rows(func(cells []string) error {
			all = append(all, append([]string(nil), cells...))
			return nil
		}); err != nil {
			return err
		}
		return Table(w, header, all, footer)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	line := make([]byte, 0, 256)
	write := func(cells []string) error {
		line = line[:0]
		for i, c := range cells {
			line = append(line, c...)
			for n := len(c); n < widths[i]+len(columnGap); n++ {
				line = append(line, ' ')
			}
		}
		// Like Table, no trailing blanks: the last column's padding, and empty cells at the end.
		line = append(bytes.TrimRight(line, " "), '\n')
		_, err := b.Write(line)
		return err
	}
	if err := write(header); err != nil {
		return err
	}
	if err := rows(write); err != nil {
		return err
	}
	if footer != nil {
		if err := write(footer); err != nil {
			return err
		}
	}
	return b.Flush()
}

// columnGap separates the columns, as Table's right padding does.
const columnGap = "  "

var errNotPlain = errors.New("a cell that is not printable ASCII")

// measure widens widths to the row's cells and says whether the row can be written by byte
// length: as many cells as columns, each of printable ASCII only.
func measure(widths []int, cells []string) bool {
	if len(cells) != len(widths) {
		return false
	}
	for i, c := range cells {
		for j := 0; j < len(c); j++ {
			if c[j] < ' ' || c[j] > '~' {
				return false
			}
		}
		widths[i] = max(widths[i], len(c))
	}
	return true
}

// List is a report whose long list Encode writes one element at a time rather than holding the
// whole document encoded (and, for YAML, decoded again) at once.
type List interface {
	// EncodedList returns the report without the list (the field left nil, so that it encodes
	// as null), the list's JSON field name, which must be a field of the report's top level,
	// its length, and its i-th element. elem is called from several goroutines at once.
	EncodedList() (rest any, field string, n int, elem func(i int) any)
}

// encodeList writes v as Encode would, the list's elements one at a time. JSON is indented like
// MarshalIndent's, each element encoded at the list's depth; for YAML each element is converted
// as the only element of the same top-level list, so that its lines are indented, and long
// strings folded, at the same columns as in the whole document.
func encodeList(w io.Writer, format string, v List) error {
	rest, field, n, elem := v.EncodedList()
	doc, err := json.MarshalIndent(rest, "", "    ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	var before, after []byte
	var empty, open, sep, closing string
	var convert func(i int, dst *bytes.Buffer) error
	switch format {
	case FormatJSON:
		// A string cannot hold a raw newline, so only the top-level key matches.
		key := "\n    " + quote(field) + ":"
		i := bytes.Index(doc, []byte(key+" null"))
		if i < 0 {
			return fmt.Errorf("encoding output: no top-level %q in the report", field)
		}
		before, after = doc[:i+len(key)], append(doc[i+len(key)+len(" null"):], '\n')
		// As MarshalIndent writes a list at depth 1: "[" after the key, each element on lines
		// of its own at depth 2, commas between, "]" on a line of its own.
		empty, open, sep, closing = " []", " [\n", ",\n", "\n    ]"
		convert = func(i int, dst *bytes.Buffer) error {
			const depth = "        "
			e, err := json.MarshalIndent(elem(i), depth, "    ")
			if err != nil {
				return fmt.Errorf("encoding output: %w", err)
			}
			dst.WriteString(depth)
			dst.Write(e)
			return nil
		}
	case FormatYAML:
		if doc, err = jsonToYAML(doc); err != nil {
			return fmt.Errorf("encoding output as YAML: %w", err)
		}
		// Nested keys and the continuation lines of long strings are indented, so only the
		// top-level key starts a line.
		key := field + ":"
		i := 0
		if !bytes.HasPrefix(doc, []byte(key+" null\n")) {
			if i = bytes.Index(doc, []byte("\n"+key+" null\n")); i < 0 {
				return fmt.Errorf("encoding output as YAML: no top-level %q in the report", field)
			}
			i++
		}
		before, after = doc[:i+len(key)], doc[i+len(key)+len(" null\n"):]
		empty, open = " []\n", "\n"
		// The document of the element alone in the list, but for its first line, the key.
		first := []byte(key + "\n")
		convert = func(i int, dst *bytes.Buffer) error {
			dst.WriteString(`{` + quote(field) + `:[`)
			if err := json.NewEncoder(dst).Encode(elem(i)); err != nil {
				return fmt.Errorf("encoding output: %w", err)
			}
			dst.WriteString(`]}`)
			y, err := jsonToYAML(dst.Bytes())
			if err != nil {
				return fmt.Errorf("encoding output as YAML: %w", err)
			}
			if !bytes.HasPrefix(y, first) {
				return fmt.Errorf("encoding output as YAML: element %d does not convert to a list item", i)
			}
			dst.Reset()
			dst.Write(y[len(first):])
			return nil
		}
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	if _, err := b.Write(before); err != nil {
		return err
	}
	if n == 0 {
		if _, err := b.WriteString(empty); err != nil {
			return err
		}
	} else {
		err := eachConverted(n, convert, func(i int, element []byte) error {
			s := sep
			if i == 0 {
				s = open
			}
			b.WriteString(s)
			_, err := b.Write(element)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := b.WriteString(closing); err != nil {
			return err
		}
	}
	if _, err := b.Write(after); err != nil {
		return err
	}
	return b.Flush()
}

// eachConverted converts the elements 0 to n-1 on every processor, a batch at a time, and hands
// them to write in order. The conversion is most of the work (YAML's especially: a parse and an
// emit of each element), the writing little; a batch bounds what is held.
func eachConverted(n int, convert func(i int, dst *bytes.Buffer) error, write func(i int, element []byte) error) error {
	workers := runtime.GOMAXPROCS(0)
	bufs := make([]bytes.Buffer, 16*workers)
	errs := make([]error, workers)
	for start := 0; start < n; start += len(bufs) {
		end := min(start+len(bufs), n)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := start + w; i < end; i += workers {
					buf := &bufs[i-start]
					buf.Reset()
					if errs[w] = convert(i, buf); errs[w] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			if err := write(i, bufs[i-start].Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}

func quote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
