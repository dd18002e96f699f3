package check

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report as lines a person reads top to bottom: a heading per section, one
// line per result ("ok", "WARN" or "FAIL", the check, the node, the message), the fix and the
// pods indented under it, and a closing count.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	section := ""
	for _, res := range r.Results {
		if res.Section != section {
			if section != "" {
				bw.WriteString("\n")
			}
			section = res.Section
			heading := strings.ToUpper(section)
			if section == SectionInstall {
				heading += fmt.Sprintf(" (%s mode)", r.Mode)
			}
			if section == SectionNodes {
				heading += fmt.Sprintf(" (%s)", plural(r.OptedInNodes, "opted-in node"))
			}
			bw.WriteString(heading + "\n")
		}
		label := res.Check
		if res.Node != "" {
			label += " node/" + res.Node
		}
		fmt.Fprintf(bw, "%-4s  %s: %s\n", statusWord(res.Status), label, res.Message)
		if res.Fix != "" {
			fmt.Fprintf(bw, "      fix: %s\n", res.Fix)
		}
		if len(res.Pods) > 0 {
			fmt.Fprintf(bw, "      pods: %s\n", strings.Join(res.Pods, ", "))
		}
	}
	fmt.Fprintf(bw, "\n%s\n", r.Summary.line())
	return bw.Flush()
}

func statusWord(s Status) string {
	switch s {
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "ok"
}
