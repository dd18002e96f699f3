// Package optin opts nodes in and out of overcommit: the label and annotation writes, the status
// write that makes the webhook act at once, and the restore of the kubelet's own values.
package optin

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// DryRun is kubectl's --dry-run.
type DryRun string

// DryRun values.
const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// ParseDryRun parses a --dry-run value like kubectl does; the error says what the value must be
// (the command names the flag).
func ParseDryRun(s string) (DryRun, error) {
	switch d := DryRun(s); d {
	case DryRunNone, DryRunClient, DryRunServer:
		return d, nil
	case "":
		return DryRunNone, nil
	}
	return "", fmt.Errorf("must be %q, %q or %q", DryRunNone, DryRunClient, DryRunServer)
}

// Suffix is what kubectl appends to a dry run's message.
func (d DryRun) Suffix() string {
	switch d {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

// Outcome is what happened to one node.
type Outcome struct {
	// Node is the node as stored afterwards (or as it would be, in a dry run); nil on error.
	Node *corev1.Node
	// Name is the node's name (set even on error).
	Name string
	// Message follows "node/NAME " in the default output: "overcommit enabled (cpu x2, memory x1)".
	Message string
	// Warnings are problems the user should see; the command still succeeded.
	Warnings []string
	Err      error
}

// Workers bounds the nodes written at once: enough to opt in thousands of nodes in seconds,
// few enough not to crowd the apiserver's priority-and-fairness queue for this user.
const Workers = 8

// forEach runs fn for 0..n-1 on up to Workers goroutines.
func forEach(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, Workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func ratioText(policyName, cpu, memory string) string {
	if policyName == "usage" {
		return fmt.Sprintf("usage policy, cpu up to x%s, memory up to x%s", cpu, memory)
	}
	return fmt.Sprintf("cpu x%s, memory x%s", cpu, memory)
}

func join(parts []string) string { return strings.Join(parts, ", ") }
