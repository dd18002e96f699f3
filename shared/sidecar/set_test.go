package sidecar

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSet(t *testing.T) {
	s := NewSet(" in namespace ns")
	good := map[string]string{DataKey: "containers:\n- name: shipper\n  image: example.com/shipper:1\n"}
	if _, err := s.PutConfigMap("logs", good); err != nil {
		t.Fatalf("valid template: %v", err)
	}
	if _, err := s.PutConfigMap("broken", map[string]string{DataKey: "containers:\n- name: x\n  imagee: y\n"}); err == nil {
		t.Fatal("a template with an unknown field parsed")
	}
	// A template that becomes valid is no longer invalid, and the other way round.
	s.Put("fixed", nil, errors.New("old"))
	if _, err := s.PutConfigMap("fixed", good); err != nil {
		t.Fatal(err)
	}
	s.Put("spoilt", &Template{Name: "spoilt"}, nil)
	s.Put("spoilt", nil, errors.New("spoilt now"))

	type lookup struct {
		Found             bool
		Err               string
		NotFound, Invalid bool
	}
	got := map[string]lookup{}
	for _, name := range []string{"logs", "fixed", "broken", "spoilt", "nope"} {
		tmpl, err := s.Get(name)
		l := lookup{Found: tmpl != nil, NotFound: errors.Is(err, ErrNotFound), Invalid: errors.Is(err, ErrInvalid)}
		if err != nil {
			l.Err = err.Error()
		}
		got[name] = l
	}
	want := map[string]lookup{
		"logs":   {Found: true},
		"fixed":  {Found: true},
		"broken": {Err: `invalid sidecar template: template "broken": parsing template.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "imagee"`, Invalid: true},
		"spoilt": {Err: "invalid sidecar template: spoilt now", Invalid: true},
		"nope":   {Err: `no such sidecar template "nope" in namespace ns`, NotFound: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"fixed", "logs"}, s.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	inv := s.Invalid()
	delete(inv, "broken")
	if v, i := s.Len(); v != 2 || i != 2 {
		t.Errorf("Len = %d valid, %d invalid after changing Invalid's map; want 2, 2", v, i)
	}
}
