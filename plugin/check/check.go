// Package check decides whether overcommit is healthy and safe in a cluster: the install (which
// node-policy mode, wired how, serving which certificate, with which settings) and every opted-in
// node (restart risk, records, pressure, memory limits, the autoscaler's view). It is pure: the
// command reads the cluster (plugin/kube) and hands the facts in, so each verdict is testable
// without one.
package check

import (
	"fmt"

	"github.com/overcommit-dev/overcommit/plugin/output"
)

// Kind is the kind of the check report.
const Kind = "CheckReport"

// Status is a check's verdict.
type Status string

// Verdicts, from good to bad. Only Fail makes `kubectl overcommit check` exit non-zero: a
// warning is a risk worth knowing that a healthy install may carry.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Sections of the report.
const (
	SectionInstall = "install"
	SectionNodes   = "nodes"
)

// Result is one line of the report.
type Result struct {
	Section string `json:"section"`
	// Check names what was checked ("webhook-certificate", "restart-risk"); stable for scripts.
	Check string `json:"check"`
	// Node is the node a per-node result is about; empty for install results and for the line
	// that sums up the nodes that passed.
	Node    string `json:"node,omitempty"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to do about a warning or failure.
	Fix string `json:"fix,omitempty"`
	// Pods lists the pods a per-node result is about (namespace/name), at most maxPods of them.
	Pods []string `json:"pods,omitempty"`
}

// Summary counts the results by status.
type Summary struct {
	OK       int `json:"ok"`
	Warnings int `json:"warnings"`
	Failures int `json:"failures"`
}

// Report is what `kubectl overcommit check -o json|yaml` prints.
type Report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Mode is the node-policy mode found: policy, webhook, both, none or unknown.
	Mode string `json:"mode"`
	// OptedInNodes counts the nodes carrying the opt-in label.
	OptedInNodes int      `json:"optedInNodes"`
	Results      []Result `json:"results"`
	Summary      Summary  `json:"summary"`
}

// NewReport returns an empty report of the mode.
func NewReport(mode string) *Report {
	return &Report{APIVersion: output.APIVersion, Kind: Kind, Mode: mode, Results: []Result{}}
}

// Add appends results and counts them.
func (r *Report) Add(results ...Result) {
	for _, res := range results {
		switch res.Status {
		case OK:
			r.Summary.OK++
		case Warn:
			r.Summary.Warnings++
		case Fail:
			r.Summary.Failures++
		}
		r.Results = append(r.Results, res)
	}
}

// Err is the command's error when a check failed, nil otherwise.
func (r *Report) Err() error {
	if r.Summary.Failures == 0 {
		return nil
	}
	return fmt.Errorf("%s failed", plural(r.Summary.Failures, "check"))
}

func (s Summary) line() string {
	return fmt.Sprintf("%d ok, %s, %d failed", s.OK, plural(s.Warnings, "warning"), s.Failures)
}

// plural writes "1 pod", "2 pods".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// result builders keep each check's code to its decision.
func ok(section, check, format string, args ...any) Result {
	return Result{Section: section, Check: check, Status: OK, Message: fmt.Sprintf(format, args...)}
}

func (r Result) with(status Status, fix string) Result {
	r.Status, r.Fix = status, fix
	return r
}
