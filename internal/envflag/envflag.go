// Package envflag lets every flag of a program also be set by an
// environment variable, the way service managers and containers configure
// programs: --data-dir of the hub is HUB_DATA_DIR. A flag given on the
// command line wins over its variable, so that an operator can override
// one setting of a unit file for one run without editing it.
//
// The registrar, the hub, zosd and provisiond read their settings through
// this package, so their variables are named, read and refused the same
// way, and their --help lists every variable.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrArgument is wrapped by the error Parse returns for a positional
// argument: every setting is a flag.
var ErrArgument = errors.New("unexpected argument")

// Error is an environment variable whose value its flag refused.
type Error struct {
	// Var is the variable, Value what it holds.
	Var, Value string
	// Err is the flag's refusal.
	Err error
}

// Error names the variable and its value on one line.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid value %q for %s: %v", e.Value, e.Var, e.Err)
}

// Unwrap returns the flag's refusal.
func (e *Error) Unwrap() error { return e.Err }

// Name returns the environment variable of the flag called flagName: the
// name after prefix, in upper case, dashes as underscores. Name("HUB_",
// "data-dir") is "HUB_DATA_DIR".
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args with fs, then sets every flag that args did not give
// from its variable Name(prefix, flag), looked up with getenv (nil: none is
// read), when that is not empty. Flags are set in name order; the first
// refused value stops the parse.
//
// The error is fs.Parse's (flag.ErrHelp for -h and --help: the caller
// writes its usage, see PrintDefaults), one wrapping ErrArgument for a
// positional argument, or an *Error.
func Parse(fs *flag.FlagSet, args []string, prefix string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w %q", ErrArgument, fs.Arg(0))
	}
	if getenv == nil {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := Name(prefix, f.Name)
		if v := getenv(name); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = &Error{Var: name, Value: v, Err: serr}
			}
		}
	})
	return err
}

// PrintDefaults writes the flags of fs for a --help: first a line saying
// that each has a variable (example names a flag whose variable is shown),
// then every flag with its variable, its default and its usage.
func PrintDefaults(out io.Writer, fs *flag.FlagSet, prefix, example string) {
	fmt.Fprintf(out, "Every flag can also be set with an environment variable %s<FLAG> (e.g. %s); a flag wins.\n\nFlags:\n", prefix, Name(prefix, example))
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" || def == "[]" {
			def = `""`
		}
		fmt.Fprintf(out, "  --%s (env %s, default %s)\n      %s\n", f.Name, Name(prefix, f.Name), def, f.Usage)
	})
}

// Program is a program whose flags are also environment variables, and
// what its --help says about itself.
type Program struct {
	// Prefix starts every variable: "HUB_".
	Prefix string
	// Usage starts the --help: the synopsis and what the program is, each
	// line ending in a newline.
	Usage string
	// Example names the flag whose variable --help shows as the example.
	Example string
}

// Parse parses args and the environment with fs, as Parse with p.Prefix
// does, with fs's own output discarded. For -h and --help it writes
// p.Usage and then PrintDefaults to out (nil: nothing is written) and
// returns flag.ErrHelp.
func (p Program) Parse(fs *flag.FlagSet, args []string, getenv func(string) string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	err := Parse(fs, args, p.Prefix, getenv)
	if errors.Is(err, flag.ErrHelp) && out != nil {
		fmt.Fprint(out, p.Usage)
		PrintDefaults(out, fs, p.Prefix, p.Example)
	}
	return err
}
