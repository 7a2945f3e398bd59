package gridctl

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCommand prints shell completion scripts for the whole
// command tree (the root of cmd when it runs).
func newCompletionCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script of gridctl",
		Long: `Print the completion script of gridctl for a shell. Load it in the current
shell, or install it where the shell finds completions.`,
		Example: `  source <(gridctl completion bash)
  gridctl completion bash > /etc/bash_completion.d/gridctl
  gridctl completion zsh > "${fpath[1]}/_gridctl"
  gridctl completion fish > ~/.config/fish/completions/gridctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%q takes one shell: bash, zsh, fish or powershell (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return cobra.OnlyValidArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(env.Stdout, true)
			case "zsh":
				return root.GenZshCompletion(env.Stdout)
			case "fish":
				return root.GenFishCompletion(env.Stdout, true)
			default:
				return root.GenPowerShellCompletionWithDesc(env.Stdout)
			}
		},
	}
	return cmd
}
