package gridctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/grid4/grid4/devnet"
)

// DevnetDirEnv is the devnet's directory when --dir is not given.
const DevnetDirEnv = "GRID_DEVNET"

// devnetFlags are the flags of every devnet command.
type devnetFlags struct {
	dir string
	bin string
}

// directory is --dir, else $GRID_DEVNET, else ~/.grid/devnet.
func (f *devnetFlags) directory(env Env) (string, error) {
	if f.dir != "" {
		return f.dir, nil
	}
	if d := env.Getenv(DevnetDirEnv); d != "" {
		return d, nil
	}
	home := env.Getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("no devnet directory: pass --dir DIR, set %s or HOME", DevnetDirEnv)
	}
	return filepath.Join(home, ".grid", "devnet"), nil
}

// binaries is --bin, else the directory of the running gridctl (make
// build puts every program in bin/).
func (f *devnetFlags) binaries() (string, error) {
	if f.bin != "" {
		return f.bin, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot tell where gridctl is (%w): give the binaries' directory with --bin", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", err
	}
	return filepath.Dir(exe), nil
}

// directories is the devnet's directory and that of the programs, for the
// commands that start programs.
func (f *devnetFlags) directories(env Env) (dir, bin string, err error) {
	if dir, err = f.directory(env); err != nil {
		return "", "", err
	}
	if bin, err = f.binaries(); err != nil {
		return "", "", err
	}
	return dir, bin, nil
}

// status reads the state of the devnet of --dir and its components'.
func (f *devnetFlags) status(ctx context.Context, env Env) (devnet.Dir, *devnet.State, []devnet.Component, error) {
	dir, err := f.directory(env)
	if err != nil {
		return "", nil, nil, err
	}
	return devnet.Status(ctx, dir)
}

// progress shows on stderr, with spinners when it is a terminal.
func devnetProgress(env Env) *devnet.Progress {
	tty := false
	if f, ok := env.Stderr.(*os.File); ok && env.Getenv("TERM") != "dumb" {
		tty = isatty.IsTerminal(f.Fd())
	}
	return devnet.NewProgress(env.Stderr, tty)
}

func newDevnetCommand(env Env) *cobra.Command {
	var flags devnetFlags
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole grid on this machine: registrar, hub, nodes",
		Long: `Run a local grid for development: a registrar (SQLite, with its explorer at /),
a hub with a published release, an admin and a farmer identity with two farms
(devtest, the test farm, and devfarm), and full nodes (the bootstrap starting
zosd). As root each node has a network namespace, a data directory and an
address of its own; otherwise nodes are processes on loopback that cannot host
workloads needing root.

Everything lives in one directory (--dir, $` + DevnetDirEnv + `, default ~/.grid/devnet):
identities, the registrar's database, the hub's data, the nodes' data, the logs
(logs/COMPONENT.log) and pid files. The processes outlive the command; 'down'
stops them and 'up' starts them again from the directory.

The programs come from --bin (default: gridctl's own directory; 'make build'
puts registrar, hub, zosd, bootstrap and gridctl in bin/).`,
		Example: `  make build && bin/gridctl devnet up --nodes 3
  eval "$(bin/gridctl devnet env)"
  bin/gridctl deploy --node 2 deployment.json --wait
  bin/gridctl devnet release v4.1.1
  bin/gridctl devnet down`,
		Args: noArgs,
		RunE: showHelp,
	}
	cmd.PersistentFlags().StringVar(&flags.dir, "dir", "", "the devnet's directory (default $"+DevnetDirEnv+", else ~/.grid/devnet)")
	cmd.PersistentFlags().StringVar(&flags.bin, "bin", "", "directory of the registrar, hub, zosd and bootstrap programs (default: gridctl's own)")
	cmd.AddCommand(newDevnetUpCommand(env, &flags), newDevnetStatusCommand(env, &flags), newDevnetLogsCommand(env, &flags),
		newDevnetEnvCommand(env, &flags), newDevnetReleaseCommand(env, &flags), newDevnetDownCommand(env, &flags))
	return cmd
}

func newDevnetUpCommand(env Env, flags *devnetFlags) *cobra.Command {
	var (
		nodes   int
		version string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the devnet, or what of it is not running",
		Long: `Start a new devnet, or resume a stopped one from its directory (same
identities, registrar database and node ids): the network (as root), the
registrar, the accounts and farms, the hub and its first release, then each
node, approved by the farmer. It returns once every node is online and answers
on its API, and prints where everything runs and the environment to paste.
Running it again on a running devnet changes nothing; a larger --nodes adds
nodes.`,
		Example: `  gridctl devnet up --nodes 3
  gridctl devnet up --dir /tmp/grid --bin ./bin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, bin, err := flags.directories(env)
			if err != nil {
				return err
			}
			if nodes < 0 {
				return fmt.Errorf("--nodes %d: want 1 or more", nodes)
			}
			st, err := devnet.Up(cmd.Context(), devnet.Config{Dir: dir, Nodes: nodes, BinDir: bin, Version: version,
				Progress: devnetProgress(env), Timeout: timeout})
			if err != nil {
				return err
			}
			return printDevnetSummary(cmd, env, flags, dir, st)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 0, fmt.Sprintf("number of nodes (default %d for a new devnet; a running one keeps its own)", devnet.DefaultNodes))
	cmd.Flags().StringVar(&version, "version", devnet.DefaultVersion, "ZOS version of a new devnet's nodes: its first release")
	cmd.Flags().DurationVar(&timeout, "timeout", devnet.DefaultTimeout, "how long each component has to start")
	return cmd
}

// printDevnetSummary prints where everything runs and the environment.
func printDevnetSummary(cmd *cobra.Command, env Env, flags *devnetFlags, dir string, st *devnet.State) error {
	d, _, comps, err := devnet.Status(cmd.Context(), dir)
	if err != nil {
		return err
	}
	p := newPrinter(env, "text")
	fmt.Fprintln(env.Stdout)
	if err := printComponents(p, st, comps); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nexplorer:   %s/ (the registrar)\n", st.RegistrarURL())
	fmt.Fprintf(env.Stdout, "registrar:  %s/api/v1\n", st.RegistrarURL())
	fmt.Fprintf(env.Stdout, "hub:        %s\n", st.HubURL())
	fmt.Fprintf(env.Stdout, "logs:       %s (gridctl devnet logs [COMPONENT] [-f])\n", d.Path("logs"))
	fmt.Fprintf(env.Stdout, "identities: %s (admin), %s (farmer)\n\n", d.Path("admin.mnemonic"), d.Path("farmer.mnemonic"))
	envCmd := "gridctl devnet env"
	if flags.dir != "" {
		envCmd += " --dir " + flags.dir
	}
	fmt.Fprintf(env.Stdout, "# paste into your shell (or: eval \"$(%s)\"):\n", envCmd)
	for _, l := range st.Env(d) {
		fmt.Fprintln(env.Stdout, l)
	}
	if len(st.Nodes) > 1 {
		fmt.Fprintf(env.Stdout, "# then, e.g.: gridctl node list; gridctl deploy --node %d deployment.json --wait\n", st.Nodes[1].NodeID)
	}
	return nil
}

// printComponents writes the components' table.
func printComponents(p *printer, st *devnet.State, comps []devnet.Component) error {
	rows := make([][]string, 0, len(comps))
	for _, c := range comps {
		pid, state := "-", p.style(styleRed, "stopped")
		if c.Running {
			pid, state = strconv.Itoa(c.PID), p.style(styleGreen, "running")
		}
		node := "-"
		if c.NodeID != 0 {
			node = fmt.Sprintf("node %d", c.NodeID)
			if c.Registrar != "" {
				node += ": " + c.Registrar
			}
		}
		rows = append(rows, []string{c.Name, pid, state, c.Address, dash(c.Namespace), node})
	}
	return p.table([]string{"COMPONENT", "PID", "STATE", "ADDRESS", "NAMESPACE", "REGISTRAR"}, rows)
}

func newDevnetStatusCommand(env Env, flags *devnetFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each component: its process, state and address",
		Example: `  gridctl devnet status
  gridctl devnet status -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, comps, err := flags.status(cmd.Context(), env)
			if err != nil {
				return err
			}
			p := newPrinter(env, output)
			if p.json {
				return p.JSON(comps)
			}
			return printComponents(p, st, comps)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func newDevnetLogsCommand(env Env, flags *devnetFlags) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [COMPONENT]",
		Short: "Print a component's log (registrar, hub, node2 or 2), or all of them",
		Example: `  gridctl devnet logs 2 -f
  gridctl devnet logs registrar`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := flags.directory(env)
			if err != nil {
				return err
			}
			cfg := devnet.LogsConfig{Dir: dir, Follow: follow, Out: env.Stdout}
			if len(args) == 1 {
				cfg.Component = args[0]
			}
			return devnet.Logs(cmd.Context(), cfg)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what is appended (until interrupted)")
	return cmd
}

func newDevnetEnvCommand(env Env, flags *devnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "env",
		Short:   "Print the environment that points gridctl at the devnet",
		Example: `  eval "$(gridctl devnet env)"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, st, _, err := flags.status(cmd.Context(), env)
			if err != nil {
				return err
			}
			for _, l := range st.Env(d) {
				fmt.Fprintln(env.Stdout, l)
			}
			return nil
		},
	}
}

func newDevnetReleaseCommand(env Env, flags *devnetFlags) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "release VERSION",
		Short: "Publish a release on the devnet's hub and roll it out",
		Long: `Build a release carrying the zosd of --bin, publish it on the devnet's hub as
tf/zos:VERSION and roll it out as an operator does: set it on the registrar for
the test farm (devtest) and wait until its nodes run it, then for everyone and
wait until every node does (--wait 0: set it for everyone at once and return).
Watch with 'gridctl node list' or 'zosd status --data DIR/nodes/node1'.`,
		Example: `  gridctl devnet release v4.1.1`,
		Args:    exactArgs(1, "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, bin, err := flags.directories(env)
			if err != nil {
				return err
			}
			return devnet.Release(cmd.Context(), devnet.ReleaseConfig{Dir: dir, BinDir: bin, Version: args[0], Wait: wait, Progress: devnetProgress(env)})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 3*time.Minute, "how long each stage may take (0: do not wait)")
	return cmd
}

func newDevnetDownCommand(env Env, flags *devnetFlags) *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the devnet and leave nothing of it running",
		Long: `Stop every node (and what it started for workloads), the hub and the
registrar, and remove the nodes' mounts, loop devices and namespaces and the
devnet's network. The directory stays: 'up' resumes the devnet, each node
bringing its workloads back as after a reboot. --purge removes the directory
too.`,
		Example: `  gridctl devnet down
  gridctl devnet down --purge`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := flags.directory(env)
			if err != nil {
				return err
			}
			return devnet.Down(cmd.Context(), devnet.DownConfig{Dir: dir, Purge: purge, Progress: devnetProgress(env)})
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "remove the devnet's directory too (identities, database, nodes' data)")
	return cmd
}
