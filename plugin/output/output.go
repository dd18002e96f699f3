// Package output prints the plugin's tables in kubectl's borderless style and its reports as
// JSON or YAML.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// APIVersion is the apiVersion of the plugin's reports (JSON/YAML output). Their schemas are
// documented in the README and change only with a new version.
const APIVersion = "overcommit.dev/v1alpha1"

// None is what kubectl prints for an empty cell.
const None = "<none>"

// Table writes header, rows and an optional footer like `kubectl get`: no borders, no lines,
// left-aligned columns two spaces apart, no trailing blanks.
func Table(w io.Writer, header []string, rows [][]string, footer []string) error {
	cell := tw.CellConfig{
		Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
		Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
		Padding:    tw.CellPadding{Global: tw.Padding{Left: "", Right: "  ", Overwrite: true}},
	}
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Symbols:  tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{Separators: tw.SeparatorsNone, Lines: tw.LinesNone},
		})),
		tablewriter.WithConfig(tablewriter.Config{Header: cell, Row: cell, Footer: cell}),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	if footer != nil {
		t.Footer(toAny(footer)...)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("rendering table: %w", err)
	}
	// The last column's padding would leave trailing blanks, which kubectl never prints.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		trimmed := strings.TrimRight(line, " \n")
		if line == "" {
			continue
		}
		if _, err := io.WriteString(w, trimmed+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Formats every report supports besides its table.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Encode writes v as JSON (indented like kubectl's -o json) or YAML. A List is written one
// element of its list at a time, in the same bytes.
func Encode(w io.Writer, format string, v any) error {
	if l, ok := v.(List); ok {
		return encodeList(w, format, l)
	}
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	switch format {
	case FormatJSON:
		b = append(b, '\n')
	case FormatYAML:
		if b, err = jsonToYAML(b); err != nil {
			return fmt.Errorf("encoding output as YAML: %w", err)
		}
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	_, err = w.Write(b)
	return err
}

// Signed prints a difference with its sign ("+4", "-500m", "0"), in the canonical form of the
// resource's amount (whole millicores or bytes), as both reports print their deltas.
func Signed(name corev1.ResourceName, q resource.Quantity) string {
	v := policy.Amount(name, q)
	c := policy.Quantity(name, v)
	if v > 0 {
		return "+" + c.String()
	}
	return c.String()
}

// Cell prints a quantity of a resource list as stored, or <none> when it is missing.
func Cell(l corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := l[name]
	if !ok {
		return None
	}
	return q.String()
}

// SignedCell prints a difference in a resource list with its sign, or <none> when it is missing.
func SignedCell(l corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := l[name]
	if !ok {
		return None
	}
	return Signed(name, q)
}

// NodeList shortens a list of node names for one line: "node/a, node/b and 3 more".
func NodeList(nodes []string) string {
	const show = 5
	shown := make([]string, 0, show)
	for _, n := range nodes[:min(show, len(nodes))] {
		shown = append(shown, "node/"+n)
	}
	if len(nodes) <= show {
		return strings.Join(shown, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(shown, ", "), len(nodes)-show)
}
