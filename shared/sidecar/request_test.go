package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

func nameList(prefix string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return strings.Join(parts, ",")
}

func TestParseRequested(t *testing.T) {
	const bad = "invalid annotation sidecar.overcommit.dev/inject: "
	const rule = " (templates are ConfigMaps: at most 253 lowercase letters, digits, '-' and '.')"
	long := strings.Repeat("a", MaxNameLength)
	tests := []struct {
		name, raw string
		want      []string
		err       string
	}{
		{name: "empty"},
		{name: "blanks", raw: " , ,\n"},
		{name: "trimmed, in order, without repeats", raw: " a, b ,,a,c ", want: []string{"a", "b", "c"}},
		{name: "longest name", raw: long, want: []string{long}},
		{name: "32 names", raw: nameList("t", 32), want: strings.Split(nameList("t", 32), ",")},
		{name: "repeats do not count", raw: strings.Repeat("a,b,", 500), want: []string{"a", "b"}},
		{name: "33 names", raw: nameList("t", 33), err: bad + "more than 32 template names, over the limit of 32"},
		{name: "longest annotation", raw: "a" + strings.Repeat(" ", MaxRequestedBytes-1), want: []string{"a"}},
		{name: "a byte longer", raw: "a" + strings.Repeat(" ", MaxRequestedBytes),
			err: bad + "longer than 16384 bytes, the limit (at most 32 template names of at most 253 characters)"},
		{name: "name too long", raw: long + "b", err: bad + `"` + strings.Repeat("a", 61) + `…" (254 bytes) is not a template name` + rule},
		{name: "not a name", raw: "a,B", err: bad + `"B" is not a template name` + rule},
		{name: "invalid UTF-8 is quoted", raw: "\xff\xfe", err: bad + `"\xff\xfe" is not a template name` + rule},
		{name: "at most five listed", raw: nameList("_", 7), err: bad + `"_0", "_1", "_2", "_3", "_4" and 2 more are not template names` + rule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequested(tc.raw)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadRequest) {
					t.Fatalf("ParseRequested = %q, %v; want an ErrBadRequest", got, err)
				}
				if diff := cmp.Diff(tc.err, err.Error()); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestedIsBounded(t *testing.T) {
	// The plugin asks whether a pod wants anything; the answer never holds more than the
	// limit, however long the annotation.
	got := Requested(map[string]string{names.SidecarInjectAnnotation: nameList("t", 20000)})
	if len(got) != MaxRequested {
		t.Errorf("Requested returned %d names, want %d", len(got), MaxRequested)
	}
}

func TestLookupRequested(t *testing.T) {
	const brokenDetail = `invalid sidecar template: template "broken1": `
	errNotReady := errors.New("not loaded yet")
	lookups := 0
	lookup := func(name string) (*Template, error) {
		lookups++
		switch {
		case name == "ok":
			return &Template{Name: name}, nil
		case name == "wait":
			return nil, errNotReady
		case strings.HasPrefix(name, "broken"):
			return nil, fmt.Errorf("%w: template %q: %s", ErrInvalid, name, strings.Repeat("x", 5000))
		}
		return nil, fmt.Errorf("%w %q in the test", ErrNotFound, name)
	}
	tests := []struct {
		name      string
		requested []string
		lookups   int
		err       string
		is        []error
	}{
		{name: "found", requested: []string{"ok"}, lookups: 1},
		{name: "one unknown", requested: []string{"ok", "u"}, lookups: 2, err: `no such sidecar template "u" in the test`, is: []error{ErrNotFound}},
		{name: "many unknown", requested: strings.Split(nameList("u", 9), ","), lookups: 9, is: []error{ErrNotFound},
			err: `no such sidecar template "u0" in the test; also no such sidecar template: "u1", "u2", "u3", "u4", "u5" and 3 more`},
		{name: "unknown and invalid, detail clipped", requested: []string{"broken1", "u", "broken2"}, lookups: 3, is: []error{ErrNotFound, ErrInvalid},
			err: `no such sidecar template "u" in the test; ` + brokenDetail + strings.Repeat("x", 1024-len(brokenDetail)-len("…")) + `…; also invalid: "broken2"`},
		{name: "not ready stops at once", requested: []string{"u", "wait", "ok", "v"}, lookups: 2, err: "not loaded yet", is: []error{errNotReady}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookups = 0
			got, err := LookupRequested(t.Context(), tc.requested, lookup)
			if lookups != tc.lookups {
				t.Errorf("%d lookups, want %d", lookups, tc.lookups)
			}
			if tc.err == "" {
				if err != nil || len(got) != len(tc.requested) {
					t.Fatalf("LookupRequested = %v, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LookupRequested = %v, want an error", got)
			}
			if diff := cmp.Diff(tc.err, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error is not %v", target)
				}
			}
		})
	}

	t.Run("context done", func(t *testing.T) {
		lookups = 0
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := LookupRequested(ctx, []string{"ok", "u"}, lookup)
		if !errors.Is(err, context.Canceled) || lookups != 0 {
			t.Errorf("err = %v after %d lookups, want context.Canceled after none", err, lookups)
		}
	})
}

func TestInjectRequestedRefusesOverLimits(t *testing.T) {
	// The plugin's offline inject refuses what the webhook refuses, before any lookup.
	pod := appPod()
	pod.Annotations = map[string]string{names.SidecarInjectAnnotation: nameList("t", MaxRequested+1)}
	_, err := InjectRequested(pod, func(string) (*Template, error) {
		t.Fatal("lookup of a refused annotation")
		return nil, nil
	})
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v, want ErrBadRequest", err)
	}
}

func TestStatusTooLong(t *testing.T) {
	raw := `{"templates":[` + strings.Repeat(`{"name":"x"},`, MaxStatusBytes/13) + `{"name":"y"}]}`
	if _, err := parseStatus(raw); !errors.Is(err, ErrStatusTooLong) {
		t.Errorf("status of %d bytes: err = %v, want ErrStatusTooLong", len(raw), err)
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"short", 5, "short"},
		{"longer", 5, "lo…"},
		{"ééé", 5, "é…"},
		{"aééé", 5, "a…"}, // é is two bytes: the cut moves back to a character boundary, not "a\xc3…"
		{"abc", 2, "ab"},  // no room for the ellipsis
		{"", 0, ""},
	}
	for _, tc := range tests {
		got := Clip(tc.s, tc.max)
		if got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
		}
		if len(got) > tc.max {
			t.Errorf("Clip(%q, %d) is %d bytes", tc.s, tc.max, len(got))
		}
	}
}

func TestQuoteNames(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, `"a"`},
		{[]string{"a", `b"c`}, `"a", "b\"c"`},
		{strings.Split("a,b,c,d,e,f", ","), `"a", "b", "c", "d", "e" and 1 more`},
		{[]string{strings.Repeat("n", 100)}, `"` + strings.Repeat("n", 61) + `…" (100 bytes)`},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, QuoteNames(tc.names)); diff != "" {
			t.Errorf("QuoteNames(%q) (-want +got):\n%s", tc.names, diff)
		}
	}
}

// doneAfter is a context that reports itself done after n looks at Err: it stops work in the
// middle, as a review the apiserver abandons does.
type doneAfter struct {
	context.Context
	n int
}

func (c *doneAfter) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

func TestPlanAndPatchHonorContext(t *testing.T) {
	a := mustParse(t, "a", "containers: [{name: a, image: a}]\nenv: [{name: A, value: a}]")
	b := mustParse(t, "b", "containers: [{name: b, image: b}]")
	pod := appPod()
	for i := range 1000 {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Env: []corev1.EnvVar{{Name: "X"}}})
	}
	view := ViewOf(pod)

	// Done after the first template: the second is not planned.
	if _, err := NewPlan(&doneAfter{Context: t.Context(), n: 2}, view, []*Template{a, b}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewPlan: err = %v, want context.Canceled", err)
	}
	plan, err := NewPlan(t.Context(), view, []*Template{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// Done while writing the env of the pod's 1,001 containers.
	if _, err := plan.Patch(&doneAfter{Context: t.Context(), n: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("Patch: err = %v, want context.Canceled", err)
	}
	if _, err := plan.Patch(t.Context()); err != nil {
		t.Errorf("Patch: %v", err)
	}
}
