// Package gridctl implements the gridctl command line: the root command and
// its command groups, one file each (keys.go, account.go, ...), registered in
// NewRootCommand.
//
// Commands take their standard streams and environment from an Env, never
// from package state, os.Stdin/os.Stdout or os.Getenv, so tests run them
// in-process.
package gridctl

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Env is what commands read and write: the process's standard streams and
// environment, or test doubles.
type Env struct {
	// Stdin is read by commands that take data on standard input.
	Stdin io.Reader
	// Stdout receives command output; help goes there too.
	Stdout io.Writer
	// Stderr receives the one-line error of a failed command.
	Stderr io.Writer
	// Getenv looks up an environment variable ("" when unset).
	Getenv func(string) string
}

// withDefaults fills unset fields so a partial Env (in tests) is safe.
func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	return e
}

// NewRootCommand builds the gridctl command tree bound to env. Errors are
// returned, not printed (SilenceErrors), and runtime errors do not dump the
// usage (SilenceUsage); Run prints them.
func NewRootCommand(env Env) *cobra.Command {
	env = env.withDefaults()
	root := &cobra.Command{
		Use:           "gridctl",
		Short:         "Command line for ThreeFold Grid v4",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          showHelp,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})

	root.AddCommand(newKeysCommand(env))
	root.AddCommand(newAccountCommand(env))
	root.AddCommand(newFarmCommand(env))
	root.AddCommand(newNodeCommand(env))
	root.AddCommand(newContractCommand(env))
	root.AddCommand(newVersionCommand(env))
	root.AddCommand(newDeployCommands(env)...)
	root.AddCommand(newHubCommand(env))
	root.AddCommand(newLogsCommand(env))
	root.AddCommand(newDevnetCommand(env))
	root.AddCommand(newCompletionCommand(env))
	return root
}

// Run executes gridctl with args (without the program name) and returns the
// process exit code: 0 on success, 1 on any error, which is printed to
// env.Stderr as one line "gridctl: <reason>".
func Run(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	root := NewRootCommand(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "gridctl: %s\n", exclusiveFlags(firstLine(err.Error())))
		return 1
	}
	return 0
}

// cobraExclusive is cobra's message for mutually exclusive flags given
// together: the group, then the flags of it that were set (sorted).
var cobraExclusive = regexp.MustCompile(`^if any flags in the group \[([^]]*)\] are set none of the others can be; \[([^]]*)\] were all set$`)

// exclusiveFlags says cobra's "if any flags in the group [a b] are set
// none of the others can be; [a b] were all set" as gridctl's other
// messages say it: "give --a or --b, not both".
func exclusiveFlags(msg string) string {
	m := cobraExclusive.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	set := strings.Fields(m[2])
	var names []string // in the group's order, as the command registers them
	for _, n := range strings.Fields(m[1]) {
		if slices.Contains(set, n) {
			names = append(names, "--"+n)
		}
	}
	if len(names) < 2 {
		return msg
	}
	if len(names) == 2 {
		return "give " + names[0] + " or " + names[1] + ", not both"
	}
	return "give only one of " + strings.Join(names, ", ")
}

// firstLine keeps error output to one line; cobra appends suggestions ("Did
// you mean this?") on further lines.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// noArgs rejects positional arguments. A command group given an unknown
// subcommand reports that rather than printing its help and succeeding. A
// leaf command does not echo what it got: it may be a secret typed in the
// wrong place.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return fmt.Errorf("%q takes no positional arguments, got %d (see '%s --help')", cmd.CommandPath(), len(args), cmd.CommandPath())
}

// exactArgs is an Args validator for commands taking n positional
// arguments, what names them in the error ("PUBLISHER/REPO TAG").
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q takes %s, got %d argument(s) (see '%s --help')", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// showHelp is the action of a command group run without a subcommand. It
// makes groups runnable, which is what lets noArgs reject unknown
// subcommands.
func showHelp(cmd *cobra.Command, _ []string) error {
	return cmd.Help()
}
