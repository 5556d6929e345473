// Command arca is a universal artifact repository manager and registry: it
// hosts packages that teams publish, proxies public registries and groups
// both behind one URL, for many package formats, in one binary.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "arca",
		Short:         "arca is an artifact repository manager and registry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), configCommand(), versionCommand())
	root.AddCommand(managementCommands()...)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "arca:", err)
		os.Exit(1)
	}
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print arca's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version)
		},
	}
}
