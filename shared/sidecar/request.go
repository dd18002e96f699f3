package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Limits on the inject annotation. Whoever creates a pod writes it, and the webhook reads it
// before the apiserver has validated anything (mutation runs first; a review may carry a 3 MiB
// object), so its cost must not grow with what an attacker can send.
const (
	// MaxRequested is how many templates one pod may ask for. A pod realistically asks for a
	// handful (a mesh proxy, a log shipper); 32 leaves room for any real pod and keeps the
	// lookups, the plan and every message about them small.
	MaxRequested = 32
	// MaxNameLength is the longest template name: templates are ConfigMaps, whose names are
	// DNS-1123 subdomains.
	MaxNameLength = validation.DNS1123SubdomainMaxLength
	// MaxRequestedBytes bounds the annotation before it is split: MaxRequested names of
	// MaxNameLength plus a separator fill 8,160 bytes; twice that leaves room for spaces and
	// line breaks in hand-written YAML. A longer annotation is refused without being read.
	MaxRequestedBytes = 16 << 10
	// MaxStatusBytes bounds the status annotation, which the pod's creator can write too. It is
	// the apiserver's limit on all of an object's annotations together (256 KiB): a pod over it
	// can never be stored, so refusing it early loses nothing.
	MaxStatusBytes = 256 << 10
)

// Bounds on what a message built from user input repeats of it.
const (
	// maxListed is how many names a message lists before "and N more".
	maxListed = 5
	// maxQuoted is how much of one name a message quotes.
	maxQuoted = 64
	// maxDetail is how much of one lookup error a message repeats.
	maxDetail = 1 << 10
)

// ErrBadRequest is an inject annotation that is over the limits or names something that cannot
// be a template.
var ErrBadRequest = errors.New("invalid annotation " + names.SidecarInjectAnnotation)

// ErrRequestTooLong is an inject annotation longer than MaxRequestedBytes.
var ErrRequestTooLong = fmt.Errorf("%w: longer than %d bytes, the limit (at most %d template names of at most %d characters)",
	ErrBadRequest, MaxRequestedBytes, MaxRequested, MaxNameLength)

// ErrStatusTooLong is a status annotation longer than MaxStatusBytes.
var ErrStatusTooLong = fmt.Errorf("annotation %s is longer than %d bytes, the apiserver's limit for all of a pod's annotations",
	names.SidecarStatusAnnotation, MaxStatusBytes)

// Requested returns the template names a pod asks for in its inject annotation, in order,
// without blanks or repeats, and at most MaxRequested of them: enough to tell whether the pod
// asks for anything. It does not check the limits or the names; ParseRequested does.
func Requested(annotations map[string]string) []string {
	out, _ := scanRequested(annotations[names.SidecarInjectAnnotation])
	return out
}

// ParseRequested reads the value of the inject annotation: template names, comma separated,
// without blanks or repeats. An annotation over the limits (MaxRequestedBytes, MaxRequested,
// MaxNameLength) or naming something that cannot be a template is an error wrapping
// ErrBadRequest, with a message of bounded length whatever the annotation holds.
func ParseRequested(raw string) ([]string, error) {
	// The length first: an oversized annotation costs nothing more to refuse.
	if len(raw) > MaxRequestedBytes {
		return nil, ErrRequestTooLong
	}
	out, more := scanRequested(raw)
	if more {
		return nil, fmt.Errorf("%w: more than %d template names, over the limit of %d", ErrBadRequest, MaxRequested, MaxRequested)
	}
	var bad []string
	for _, n := range out {
		if len(n) > MaxNameLength || len(validation.IsDNS1123Subdomain(n)) > 0 {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		verb := "is not a template name"
		if len(bad) > 1 {
			verb = "are not template names"
		}
		return nil, fmt.Errorf("%w: %s %s (templates are ConfigMaps: at most %d lowercase letters, digits, '-' and '.')",
			ErrBadRequest, QuoteNames(bad), verb, MaxNameLength)
	}
	return out, nil
}

// scanRequested splits the annotation at commas, trims blanks and drops repeats (a set, not a
// search of what was kept: linear in the annotation). It stops at the first distinct name past
// MaxRequested and reports that there were more.
func scanRequested(raw string) (out []string, more bool) {
	seen := make(map[string]struct{}, 4)
	for rest := raw; rest != ""; {
		var n string
		n, rest, _ = strings.Cut(rest, ",")
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, dup := seen[n]; dup {
			continue
		}
		if len(out) == MaxRequested {
			return out, true
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	return out, false
}

// LookupRequested looks up the named templates. Every name is looked up and every problem is
// reported, in one error of bounded length: the first unknown and the first invalid template in
// full, the others by name, at most a few of them. An error that is not about one template (the
// source is not ready) is returned at once, since every other lookup would fail the same way.
// It stops when ctx is done.
func LookupRequested(ctx context.Context, requested []string, lookup func(name string) (*Template, error)) ([]*Template, error) {
	templates := make([]*Template, 0, len(requested))
	var unknown, invalid []string
	var firstUnknown, firstInvalid error
	for _, n := range requested {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("looking up sidecar templates: %w", context.Cause(ctx))
		}
		t, err := lookup(n)
		switch {
		case err == nil:
			templates = append(templates, t)
		case errors.Is(err, ErrNotFound):
			if firstUnknown == nil {
				firstUnknown = err
			} else {
				unknown = append(unknown, n)
			}
		case errors.Is(err, ErrInvalid):
			if firstInvalid == nil {
				firstInvalid = err
			} else {
				invalid = append(invalid, n)
			}
		default:
			return nil, err
		}
	}
	if firstUnknown == nil && firstInvalid == nil {
		return templates, nil
	}
	e := &LookupError{}
	var parts []string
	if firstUnknown != nil {
		e.errs = append(e.errs, firstUnknown)
		parts = append(parts, Clip(firstUnknown.Error(), maxDetail))
		if len(unknown) > 0 {
			parts = append(parts, "also no such sidecar template: "+QuoteNames(unknown))
		}
	}
	if firstInvalid != nil {
		e.errs = append(e.errs, firstInvalid)
		parts = append(parts, Clip(firstInvalid.Error(), maxDetail))
		if len(invalid) > 0 {
			parts = append(parts, "also invalid: "+QuoteNames(invalid))
		}
	}
	e.msg = strings.Join(parts, "; ")
	return nil, e
}

// LookupError is every failed lookup of one request. It unwraps to the first unknown and the
// first invalid template's errors, so errors.Is tells ErrNotFound and ErrInvalid apart.
type LookupError struct {
	msg  string
	errs []error
}

func (e *LookupError) Error() string   { return e.msg }
func (e *LookupError) Unwrap() []error { return e.errs }

// QuoteNames lists names for a message built from user input: at most a few, each quoted and
// clipped, then how many more there were.
func QuoteNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", Clip(n, maxQuoted))
		if len(n) > maxQuoted {
			fmt.Fprintf(&b, " (%d bytes)", len(n))
		}
	}
	return b.String()
}

// Clip shortens s to at most max bytes, cut at a character boundary and ending in "…" when it
// was cut: for messages and log lines that repeat what a user wrote.
func Clip(s string, max int) string {
	const ellipsis = "…"
	if len(s) <= max {
		return s
	}
	tail := ellipsis
	if max < len(ellipsis) {
		tail = ""
	}
	cut := max - len(tail)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}
