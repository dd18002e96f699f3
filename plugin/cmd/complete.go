package cmd

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/overcommit-dev/overcommit/plugin/kube"
)

// completeNodes completes node names (matching selector, if any) not already on the command
// line. It is called with the flags parsed, so --kubeconfig and --context are honoured.
func completeNodes(f ClientFactory, selector string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		c, err := f.Clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		nodes, err := kube.ListNodes(cmd.Context(), c.Kube, selector)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range nodes {
			if strings.HasPrefix(n.Name, toComplete) && !slices.Contains(args, n.Name) {
				out = append(out, n.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
