package savings

import (
	"encoding/csv"
	"io"
	"strconv"
)

// FormatCSV is -o csv, which only the savings report has.
const FormatCSV = "csv"

// CSVHeader is the header row of -o csv. The columns are the same with or without metrics, so
// that a script can rely on them; an unknown amount is an empty cell.
var CSVHeader = []string{"node", "enabled", "policy", "pods",
	"cpu_raw", "cpu_allocatable", "cpu_requests", "cpu_usage", "cpu_usage_percent_of_requests", "cpu_extra",
	"memory_raw", "memory_allocatable", "memory_requests", "memory_usage", "memory_usage_percent_of_requests", "memory_extra",
	"usage_statistic", "hold"}

// WriteCSV prints a header row and one row per node, amounts as canonical quantity strings
// ("2500m", "8Gi"). There is no TOTAL row: a spreadsheet or script sums the columns itself, and
// a summary row among the nodes would be counted twice by the first SUM over a column.
func (r *SavingsReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, n := range r.Nodes {
		row := []string{n.Name, strconv.FormatBool(n.Enabled), n.Policy, strconv.Itoa(n.Pods)}
		row = append(row, csvAmounts(n.CPU)...)
		row = append(row, csvAmounts(n.Memory)...)
		stat := ""
		if n.UsageStatistic != nil {
			stat = n.UsageStatistic.Policy().String()
		}
		row = append(row, stat, n.Hold)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvAmounts(a Amounts) []string {
	var usage, pct string
	if a.Usage != nil {
		usage = a.Usage.String()
	}
	if a.UsagePercentOfRequests != nil {
		pct = strconv.FormatInt(*a.UsagePercentOfRequests, 10)
	}
	return []string{a.Raw.String(), a.Allocatable.String(), a.Requests.String(), usage, pct, a.Extra.String()}
}
