package gridctl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/registrar/api"
)

// freeFlags are the --free-* filters of `node list`.
type freeFlags struct {
	cru, ips      uint64
	mru, sru, hru string
}

func (f *freeFlags) register(cmd *cobra.Command) {
	cmd.Flags().Uint64Var(&f.cru, "free-cru", 0, "only nodes with at least `N` logical CPUs free")
	cmd.Flags().StringVar(&f.mru, "free-mru", "", "only nodes with at least `SIZE` of memory free (8GiB)")
	cmd.Flags().StringVar(&f.sru, "free-sru", "", "only nodes with at least `SIZE` of SSD free")
	cmd.Flags().StringVar(&f.hru, "free-hru", "", "only nodes with at least `SIZE` of HDD free")
	cmd.Flags().Uint64Var(&f.ips, "free-ips", 0, "only nodes with at least `N` public IPv4 addresses free")
}

// capacity returns the minimums the flags ask for.
func (f *freeFlags) capacity() (api.Capacity, error) {
	c := api.Capacity{CRU: f.cru, IPv4: f.ips}
	for _, s := range []struct {
		flag, v string
		dst     *uint64
	}{{"--free-mru", f.mru, &c.MRU}, {"--free-sru", f.sru, &c.SRU}, {"--free-hru", f.hru, &c.HRU}} {
		if s.v == "" {
			continue
		}
		n, err := flagvalue.ParseSize(s.v)
		if err != nil {
			return c, fmt.Errorf("%s %q: %w", s.flag, s.v, err)
		}
		*s.dst = n
	}
	return c, nil
}

// healthCell is a node's health for tables: yes, no, or "-" when it never
// sent a status report.
func (s *session) healthCell(n api.Node) string {
	if n.StatusAt == nil {
		return "-"
	}
	return s.out.yesNo(n.Healthy)
}

// freeCells are the FREE columns of a node: CRU, MRU, SRU, HRU, IPs.
func freeCells(f *api.Capacity) []string {
	if f == nil {
		return []string{"-", "-", "-", "-", "-"}
	}
	return []string{strconv.FormatUint(f.CRU, 10), fmtBytes(f.MRU), fmtBytes(f.SRU), fmtBytes(f.HRU), strconv.FormatUint(f.IPv4, 10)}
}

// freeText is a capacity on one line: "6 cru, 12.0 GiB mru, ...".
func freeText(f *api.Capacity) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%d cru, %s mru, %s sru, %s hru, %d ips", f.CRU, fmtBytes(f.MRU), fmtBytes(f.SRU), fmtBytes(f.HRU), f.IPv4)
}

// statusAt is when a node last sent its status, "never" if it did not.
func statusAt(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return fmtTime(*t) + " (" + fmtAgo(*t, time.Now()) + ")"
}

func newNodeStatusCommand(env Env, remote *remoteFlags) *cobra.Command {
	var size int
	cmd := &cobra.Command{
		Use:   "status NODE_ID",
		Short: "Show a node's latest status report and its recent ones",
		Long: `Show what a node last reported of its resource usage and health: whether it
is healthy and why not (failing checks, modules not running, reports that
stopped), its capacity total, used and free, its deployments and workloads by
state, its modules and its version; then its recent reports, newest first.`,
		Example: `  gridctl node status 12
  gridctl node status 12 --size 3 -o json`,
		Args: exactlyOneID("node id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("node id", args)
			if size < 0 {
				return fmt.Errorf("--size %d: want 1 or more (0: all the registrar keeps)", size)
			}
			ctx, cancel, s, err := remote.open(cmd, env, nil)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := s.client.NodeStatus(ctx, ids[0], size)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(st)
			}
			return s.printStatus(st)
		},
	}
	cmd.Flags().IntVar(&size, "size", 0, "how many recent reports to show (default: all the registrar keeps)")
	return cmd
}

// printStatus prints a node's latest status and its history.
func (s *session) printStatus(st api.NodeStatusHistory) error {
	l := st.Latest
	if l == nil {
		_, err := fmt.Fprintf(s.env.Stdout, "node %d has sent no status report\n", st.NodeID)
		return err
	}
	workloads := make([]string, 0, len(l.Workloads))
	for _, state := range sortedKeys(l.Workloads) {
		workloads = append(workloads, fmt.Sprintf("%d %s", l.Workloads[state], state))
	}
	err := s.out.fields([][2]string{
		{"node id", strconv.FormatUint(st.NodeID, 10)},
		{"reported", fmtTime(l.ReportedAt) + " (" + fmtAgo(l.ReportedAt, time.Now()) + ")"},
		{"healthy", s.out.yesNo(l.Healthy)},
		{"reasons", dash(strings.Join(l.Reasons, "; "))},
		{"version", dash(l.Version)},
		{"total", freeText(&l.Total)},
		{"used", freeText(&l.Used)},
		{"free", freeText(&l.Free)},
		{"deployments", strconv.FormatUint(l.Deployments, 10)},
		{"workloads", dash(strings.Join(workloads, ", "))},
	})
	if err != nil {
		return err
	}
	if len(l.Checks) > 0 {
		rows := make([][]string, 0, len(l.Checks))
		for _, c := range l.Checks {
			rows = append(rows, []string{c.Name, s.out.yesNo(c.OK), dash(c.Reason)})
		}
		if err := s.section([]string{"CHECK", "OK", "REASON"}, rows); err != nil {
			return err
		}
	}
	if len(l.Modules) > 0 {
		rows := make([][]string, 0, len(l.Modules))
		for _, m := range l.Modules {
			rows = append(rows, []string{m.Name, m.State, strconv.FormatUint(m.Restarts, 10), dash(m.LastExit)})
		}
		if err := s.section([]string{"MODULE", "STATE", "RESTARTS", "LAST EXIT"}, rows); err != nil {
			return err
		}
	}
	rows := make([][]string, 0, len(st.History))
	for _, h := range st.History {
		row := append([]string{fmtTime(h.ReportedAt), s.out.yesNo(h.Healthy)}, freeCells(&h.Free)...)
		rows = append(rows, append(row, strconv.FormatUint(h.Deployments, 10)))
	}
	return s.section([]string{"REPORTED", "HEALTHY", "FREE CRU", "FREE MRU", "FREE SRU", "FREE HRU", "FREE IPS", "DEPLOYMENTS"}, rows)
}

// section prints a blank line and a table.
func (s *session) section(header []string, rows [][]string) error {
	if _, err := fmt.Fprintln(s.env.Stdout); err != nil {
		return err
	}
	return s.out.table(header, rows)
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
