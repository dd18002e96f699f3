package sidecar

import (
	"fmt"
	"sort"
)

// Set is the templates of one place (the webhook's namespace, a --template-dir) by name, each
// valid or invalid, with the lookup the webhook denies pods by: the webhook's template store
// publishes one, and the plugin's offline inject and the tests read templates into one, so all
// of them answer a pod's request alike. Fill a Set before sharing it: Put is not safe
// concurrently with anything else, and the webhook publishes a new Set rather than changing one.
type Set struct {
	where   string
	valid   map[string]*Template
	invalid map[string]error
}

// NewSet returns an empty set. where ends the error for a name it does not hold, after the name
// (`no such sidecar template "x"` + where), to say where the template was looked for.
func NewSet(where string) *Set {
	return &Set{where: where, valid: map[string]*Template{}, invalid: map[string]error{}}
}

// Put records the outcome of parsing the template name: t when err is nil, else err (the template
// is then invalid, and pods asking for it are denied with err).
func (s *Set) Put(name string, t *Template, err error) {
	delete(s.valid, name)
	delete(s.invalid, name)
	if err != nil {
		s.invalid[name] = err
		return
	}
	s.valid[name] = t
}

// PutConfigMap parses a template ConfigMap's data (FromConfigMap) into the set under its name and
// returns what it parsed.
func (s *Set) PutConfigMap(name string, data map[string]string) (*Template, error) {
	t, err := FromConfigMap(name, data)
	s.Put(name, t, err)
	return t, err
}

// Get returns the named template, or why it cannot be injected: invalid (wraps ErrInvalid and the
// template's error) or not found (wraps ErrNotFound).
func (s *Set) Get(name string) (*Template, error) {
	if t, ok := s.valid[name]; ok {
		return t, nil
	}
	if err, ok := s.invalid[name]; ok {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil, fmt.Errorf("%w %q%s", ErrNotFound, name, s.where)
}

// Names returns the valid templates' names, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.valid))
	for n := range s.valid {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Invalid returns the invalid templates and why, in a map of the caller's own.
func (s *Set) Invalid() map[string]error {
	out := make(map[string]error, len(s.invalid))
	for n, err := range s.invalid {
		out[n] = err
	}
	return out
}

// Len counts the valid and the invalid templates.
func (s *Set) Len() (valid, invalid int) { return len(s.valid), len(s.invalid) }
