// Package jsonscan reads the few fields a webhook needs out of a large JSON document in one
// pass, without allocating for what it skips. Admission reviews carry whole objects twice
// (object and oldObject); a 15 KB Node is mostly images and conditions that the policy never
// reads. General-purpose decoders either validate and decode everything or allocate a string
// per skipped field name; this scanner walks the bytes once and hands out sub-slices.
//
// It checks structure (balanced brackets, terminated strings, commas and colons, literals) but
// not the finer grammar of numbers, which the apiserver has already validated.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Scanner reads one JSON document.
type Scanner struct {
	data  []byte
	pos   int
	depth int
	err   error
}

// MaxDepth bounds nesting, as encoding/json does: a body of a million '[' must be an error, not
// a stack that grows without limit.
const MaxDepth = 10000

// New returns a scanner over data; it keeps data and hands out sub-slices of it.
func New(data []byte) *Scanner { return &Scanner{data: data} }

// Reset reuses the scanner for new data.
func (s *Scanner) Reset(data []byte) { *s = Scanner{data: data} }

// Err is the first error met, if any.
func (s *Scanner) Err() error { return s.err }

func (s *Scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("offset %d: %s", s.pos, fmt.Sprintf(format, args...))
	}
	s.pos = len(s.data)
}

// Fail stops the scan with an error of the caller's (a value that is valid JSON but not valid
// for the caller); later reads do nothing and Err returns it.
func (s *Scanner) Fail(err error) {
	if s.err == nil {
		s.err = err
	}
	s.pos = len(s.data)
}

// Peek returns the first byte of the next value after white space, or 0 at the end.
func (s *Scanner) Peek() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// End reports an error unless only white space is left.
func (s *Scanner) End() error {
	if s.err == nil && s.Peek() != 0 {
		s.fail("unexpected data after the document")
	}
	return s.err
}

// Null consumes a null and reports whether there was one.
func (s *Scanner) Null() bool {
	if s.Peek() == 'n' {
		s.literal("null")
		return s.err == nil
	}
	return false
}

// Object calls f for each member of an object, with the member name (unescaped); f must consume
// the value (read it or Skip it). A null object is empty.
func (s *Scanner) Object(f func(key []byte)) {
	if !s.open('{', '}', "an object") {
		return
	}
	defer s.leave()
	for s.err == nil {
		if s.Peek() != '"' {
			s.fail("expected a member name")
			return
		}
		key := s.rawString()
		if !s.colon() {
			return
		}
		before := s.pos
		f(key)
		if s.err != nil {
			return
		}
		if s.pos == before {
			s.fail("member %q was not consumed", key)
			return
		}
		if !s.next('}', "an object") {
			return
		}
	}
}

// Array calls f for each element of an array; f must consume the element (read it or Skip it).
// A null array is empty.
func (s *Scanner) Array(f func()) {
	if !s.open('[', ']', "an array") {
		return
	}
	defer s.leave()
	for s.err == nil {
		before := s.pos
		f()
		if s.err != nil {
			return
		}
		if s.pos == before {
			s.fail("array element was not consumed")
			return
		}
		if !s.next(']', "an array") {
			return
		}
	}
}

// open reads null or the opening bracket of a container and enters it. It returns true when
// members follow, which the caller reads before it leaves; false for null, an empty container
// (read, entered and left) or an error.
func (s *Scanner) open(opening, closing byte, what string) bool {
	switch s.Peek() {
	case 'n':
		s.literal("null")
		return false
	case opening:
		s.pos++
	default:
		s.fail("expected %s", what)
		return false
	}
	if !s.enter() {
		return false
	}
	if s.Peek() == closing {
		s.pos++
		s.leave()
		return false
	}
	return true
}

// next reads what follows a member or an element of what: true after a ',' (another one
// follows), false after the closing bracket or on an error.
func (s *Scanner) next(closing byte, what string) bool {
	switch s.Peek() {
	case ',':
		s.pos++
		return true
	case closing:
		s.pos++
		return false
	}
	s.fail("expected ',' or '%c' in %s", closing, what)
	return false
}

// colon reads the ':' after a member name.
func (s *Scanner) colon() bool {
	if s.Peek() != ':' {
		s.fail("expected ':' after a member name")
		return false
	}
	s.pos++
	return true
}

// String reads a string value (unescaped). Anything else is an error.
func (s *Scanner) String() string {
	if s.Peek() != '"' {
		s.fail("expected a string")
		return ""
	}
	return string(s.rawString())
}

// StringOrNull reads a string, or null as "" (as encoding/json decodes null into a Go string).
func (s *Scanner) StringOrNull() string {
	if s.Null() {
		return ""
	}
	return s.String()
}

// Bool reads true or false.
func (s *Scanner) Bool() bool {
	switch s.Peek() {
	case 't':
		s.literal("true")
		return true
	case 'f':
		s.literal("false")
		return false
	}
	s.fail("expected a boolean")
	return false
}

// Raw skips the next value and returns its bytes (a sub-slice, not a copy).
func (s *Scanner) Raw() []byte {
	s.Peek()
	start := s.pos
	s.Skip()
	if s.err != nil {
		return nil
	}
	return s.data[start:s.pos]
}

// Capture runs f, which must consume one value, and returns that value's bytes (a sub-slice):
// a caller can read some members of an object and still keep the whole of it.
func (s *Scanner) Capture(f func()) []byte {
	s.Peek()
	start := s.pos
	f()
	if s.err != nil {
		return nil
	}
	return s.data[start:s.pos]
}

// Skip passes over the next value of any kind.
func (s *Scanner) Skip() {
	switch c := s.Peek(); c {
	case '"':
		s.skipString()
	case '{':
		s.skipObject()
	case '[':
		s.skipArray()
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	case 0:
		s.fail("unexpected end of input")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			s.skipNumber()
			return
		}
		s.fail("unexpected character %q", c)
	}
}

// skipObject is Object without reading member names: nobody asks for them.
func (s *Scanner) skipObject() {
	if !s.open('{', '}', "an object") {
		return
	}
	defer s.leave()
	for s.err == nil {
		if s.Peek() != '"' {
			s.fail("expected a member name")
			return
		}
		s.skipString()
		if !s.colon() {
			return
		}
		s.Skip()
		if !s.next('}', "an object") {
			return
		}
	}
}

// skipArray is Array with Skip for each element.
func (s *Scanner) skipArray() {
	if !s.open('[', ']', "an array") {
		return
	}
	defer s.leave()
	for s.err == nil {
		s.Skip()
		if !s.next(']', "an array") {
			return
		}
	}
}

func (s *Scanner) enter() bool {
	s.depth++
	if s.depth > MaxDepth {
		s.fail("nesting deeper than %d", MaxDepth)
		return false
	}
	return true
}

func (s *Scanner) leave() { s.depth-- }

func (s *Scanner) literal(word string) {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		s.fail("expected %s", word)
		return
	}
	s.pos += len(word)
}

func (s *Scanner) skipNumber() {
	start := s.pos
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.pos++
		default:
			if s.pos == start {
				s.fail("bad number")
			}
			return
		}
	}
}

// skipString passes over a string starting at '"' without decoding or validating its content:
// it jumps from quote to quote (bytes.IndexByte is vectorised) and a quote ends the string when
// an even number of backslashes precedes it. Skipped strings are most of a review's bytes.
func (s *Scanner) skipString() {
	s.pos++ // opening quote
	for {
		i := bytes.IndexByte(s.data[s.pos:], '"')
		if i < 0 {
			s.fail("unterminated string")
			return
		}
		end := s.pos + i
		backslashes := 0
		for j := end - 1; j >= s.pos && s.data[j] == '\\'; j-- {
			backslashes++
		}
		s.pos = end + 1
		if backslashes%2 == 0 {
			return
		}
	}
}

// rawString reads a string starting at '"': a sub-slice when it has no escapes, else a
// decoded copy.
func (s *Scanner) rawString() []byte {
	start := s.pos + 1
	escaped := false
	s.pos++
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			s.pos++
			// Invalid UTF-8 is decoded as encoding/json does (U+FFFD), so both agree.
			if !escaped && utf8.Valid(s.data[start:s.pos-1]) {
				return s.data[start : s.pos-1]
			}
			var out string
			if err := json.Unmarshal(s.data[start-1:s.pos], &out); err != nil {
				s.fail("bad string: %v", err)
				return nil
			}
			return []byte(out)
		case c == '\\':
			escaped = true
			s.pos += 2
		case c < 0x20:
			s.fail("control character in a string")
			return nil
		default:
			s.pos++
		}
	}
	s.fail("unterminated string")
	return nil
}

// ErrNotObject is returned by helpers that need an object at the top level.
var ErrNotObject = errors.New("not a JSON object")
