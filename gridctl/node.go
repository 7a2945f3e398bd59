package gridctl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

func newNodeCommand(env Env) *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List and show nodes, approve or reject them, see their uptime and status, set their power",
		Long: `List and show nodes, approve or reject the nodes of your farm, and see a
node's uptime history and status (resource usage and health). Nodes register
themselves (with their own identity); the farm's owner then approves them.`,
		Example: `  gridctl node list --farm 3
  gridctl node list --healthy --free-mru 8GiB
  gridctl node approve 12 13 --mnemonic-file ~/.grid/mnemonic
  gridctl node uptime 12 --since 7d
  gridctl node status 12
  gridctl node power off 12 --mnemonic-file ~/.grid/mnemonic`,
		Args: noArgs,
		RunE: showHelp,
	}
	remote.register(cmd)
	cmd.AddCommand(newNodeListCommand(env, &remote), newNodeShowCommand(env, &remote),
		newNodeApprovalCommand(env, &remote, true), newNodeApprovalCommand(env, &remote, false),
		newNodeUptimeCommand(env, &remote), newNodeStatusCommand(env, &remote), newNodePowerCommand(env, &remote))
	return cmd
}

func newNodeListCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		farm, twin         uint64
		online, offline    bool
		healthy, unhealthy bool
		free               freeFlags
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes, optionally of one farm or twin, online or offline, healthy, with free capacity",
		Long: `List nodes ordered by id, all of them (fetched page by page) unless filtered.
A node is online when its last uptime report is recent (the registrar decides
how recent), healthy when its last status report says so and is recent too.
The FREE columns are what that report left free ("-": the node never sent
one). The --free flags keep nodes with at least that much free; sizes take a
unit (8GiB, 500GB).`,
		Example: `  gridctl node list
  gridctl node list --farm 3 --online
  gridctl node list --healthy --free-mru 8GiB --free-ips 1
  gridctl node list --unhealthy --farm 3
  gridctl node list --twin 9 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if online && offline {
				return errors.New("give --online or --offline, not both")
			}
			if healthy && unhealthy {
				return errors.New("give --healthy or --unhealthy, not both")
			}
			minFree, err := free.capacity()
			if err != nil {
				return err
			}
			ctx, cancel, s, err := remote.open(cmd, env, nil)
			if err != nil {
				return err
			}
			defer cancel()
			filter := client.NodeFilter{FarmID: farm, TwinID: twin, FreeAtLeast: minFree}
			if online || offline {
				filter.Online = &online
			}
			if healthy || unhealthy {
				filter.Healthy = &healthy
			}
			nodes := []api.Node{}
			for n, err := range s.client.Nodes(ctx, filter) {
				if err != nil {
					return s.explain(err)
				}
				nodes = append(nodes, n)
			}
			return s.printNodes(nodes)
		},
	}
	cmd.Flags().Uint64Var(&farm, "farm", 0, "only nodes of this farm `ID`")
	cmd.Flags().Uint64Var(&twin, "twin", 0, "only the node of this twin `ID`")
	cmd.Flags().BoolVar(&online, "online", false, "only online nodes")
	cmd.Flags().BoolVar(&offline, "offline", false, "only offline nodes")
	cmd.Flags().BoolVar(&healthy, "healthy", false, "only healthy nodes")
	cmd.Flags().BoolVar(&unhealthy, "unhealthy", false, "only unhealthy nodes (their status report says so or is too old)")
	free.register(cmd)
	return cmd
}

func newNodeShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	return newShowCommand(env, remote, &cobra.Command{
		Use:   "show NODE_ID",
		Short: "Show one node: farm, approval, liveness, capacity, location, interfaces",
		Example: `  gridctl node show 12
  gridctl node show 12 -o json`,
	}, "node id", (*client.Client).Node, (*session).printNode)
}

func newNodeApprovalCommand(env Env, remote *remoteFlags, approve bool) *cobra.Command {
	var (
		id   identityFlags
		farm uint64
	)
	verb, past, example := "approve", "approved", "approve"
	short := "Approve nodes of your farm"
	long := `Approve nodes registered in a farm your twin owns, then list them. Without
--farm each node's farm is looked up. The change is all or nothing per farm.`
	if !approve {
		verb, past, example = "reject", "rejected", "reject"
		short = "Withdraw the approval of nodes of your farm"
		long = `Withdraw the approval of nodes of a farm your twin owns, then list them.
Without --farm each node's farm is looked up. The change is all or nothing per
farm.`
	}
	cmd := &cobra.Command{
		Use:   verb + " NODE_ID...",
		Short: short,
		Long:  long,
		Example: `  gridctl node ` + example + ` 12 --mnemonic-file ~/.grid/mnemonic
  gridctl node ` + example + ` 12 13 14 --farm 3 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%q needs at least one node id (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			_, err := parseIDs("node id", args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			nodeIDs, _ := parseIDs("node id", args)
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			byFarm := map[uint64][]uint64{}
			var farms []uint64
			for _, nid := range nodeIDs {
				f := farm
				if f == 0 {
					n, err := s.client.Node(ctx, nid)
					if err != nil {
						return s.explain(fmt.Errorf("node %d: %w", nid, err))
					}
					f = n.FarmID
				}
				if _, ok := byFarm[f]; !ok {
					farms = append(farms, f)
				}
				if !slices.Contains(byFarm[f], nid) {
					byFarm[f] = append(byFarm[f], nid)
				}
			}
			for _, f := range farms {
				if approve {
					err = s.client.ApproveNodes(ctx, f, byFarm[f]...)
				} else {
					err = s.client.RejectNodes(ctx, f, byFarm[f]...)
				}
				if err != nil {
					return s.explain(err)
				}
			}
			nodes := make([]api.Node, 0, len(nodeIDs))
			for _, f := range farms {
				for _, nid := range byFarm[f] {
					n, err := s.client.Node(ctx, nid)
					if err != nil {
						return s.explain(err)
					}
					nodes = append(nodes, n)
				}
			}
			if !s.out.json {
				fmt.Fprintf(env.Stdout, "%s %d node(s)\n", past, len(nodes))
			}
			return s.printNodes(nodes)
		},
	}
	id.register(cmd)
	cmd.Flags().Uint64Var(&farm, "farm", 0, "the farm `ID` of all the nodes (default: look each one up)")
	return cmd
}

func newNodeUptimeCommand(env Env, remote *remoteFlags) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "uptime NODE_ID",
		Short: "Show a node's boots as seen through its uptime reports",
		Long: `Show a node's uptime history, newest first: one line per boot, from the boot
time (first report minus the uptime it gave) to its last report. --since and
--until take a time (2025-03-01, 2025-03-01T10:00:00Z) or an age (90m, 36h, 7d).`,
		Example: `  gridctl node uptime 12
  gridctl node uptime 12 --since 7d
  gridctl node uptime 12 --since 2025-03-01 --until 2025-03-08 -o json`,
		Args: exactlyOneID("node id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("node id", args)
			now := time.Now()
			from, err := parseWhen("--since", since, now)
			if err != nil {
				return err
			}
			to, err := parseWhen("--until", until, now)
			if err != nil {
				return err
			}
			ctx, cancel, s, err := remote.open(cmd, env, nil)
			if err != nil {
				return err
			}
			defer cancel()
			sessions, err := s.client.UptimeHistory(ctx, ids[0], from, to)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(sessions)
			}
			rows := make([][]string, 0, len(sessions))
			for _, u := range sessions {
				rows = append(rows, []string{fmtTime(u.BootTime), fmtTime(u.LastReport), fmtSeconds(u.Uptime), strconv.FormatUint(u.Reports, 10)})
			}
			return s.out.table([]string{"BOOTED", "LAST REPORT", "UPTIME", "REPORTS"}, rows)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only boots active after `WHEN` (a time or an age such as 7d)")
	cmd.Flags().StringVar(&until, "until", "", "only boots started before `WHEN`")
	return cmd
}

// parseWhen reads a time (RFC 3339, or a date) or an age before now ("90m",
// "36h", "7d"). Empty gives the zero time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseUint(days, 10, 16); err == nil {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want a time (2025-03-01 or 2025-03-01T10:00:00Z) or an age (90m, 36h, 7d)", flag, s)
}

// printNodes prints nodes as a table.
func (s *session) printNodes(nodes []api.Node) error {
	if s.out.json {
		return s.out.JSON(nodes)
	}
	now := time.Now()
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		seen := "never"
		if n.LastSeen != nil {
			seen = fmtAgo(*n.LastSeen, now)
		}
		row := []string{
			strconv.FormatUint(n.NodeID, 10), strconv.FormatUint(n.FarmID, 10), strconv.FormatUint(n.TwinID, 10),
			s.out.yesNo(n.Approved), s.out.yesNo(n.Online), s.healthCell(n), seen, dash(n.Location.Country),
			strconv.FormatUint(n.Resources.CRU, 10), fmtBytes(n.Resources.MRU), fmtBytes(n.Resources.SRU), fmtBytes(n.Resources.HRU),
		}
		row = append(row, freeCells(n.Free)...)
		rows = append(rows, append(row, dash(n.ZosVersion)))
	}
	return s.out.table([]string{"NODE", "FARM", "TWIN", "APPROVED", "ONLINE", "HEALTHY", "LAST SEEN", "COUNTRY", "CRU", "MRU", "SRU", "HRU",
		"FREE CRU", "FREE MRU", "FREE SRU", "FREE HRU", "FREE IPS", "ZOS"}, rows)
}

// printNode prints one node and its interfaces.
func (s *session) printNode(n api.Node) error {
	if s.out.json {
		return s.out.JSON(n)
	}
	seen := "never"
	if n.LastSeen != nil {
		seen = fmtTime(*n.LastSeen) + " (" + fmtAgo(*n.LastSeen, time.Now()) + ")"
	}
	loc := strings.Trim(strings.Join([]string{n.Location.City, n.Location.Country}, ", "), ", ")
	if n.Location.Latitude != "" || n.Location.Longitude != "" {
		loc += fmt.Sprintf(" (%s, %s)", n.Location.Latitude, n.Location.Longitude)
	}
	err := s.out.fields([][2]string{
		{"node id", strconv.FormatUint(n.NodeID, 10)},
		{"farm id", strconv.FormatUint(n.FarmID, 10)},
		{"twin id", strconv.FormatUint(n.TwinID, 10)},
		{"approved", s.out.yesNo(n.Approved)},
		{"online", s.out.yesNo(n.Online)},
		{"last seen", seen},
		{"location", dash(strings.TrimSpace(loc))},
		{"cru", strconv.FormatUint(n.Resources.CRU, 10)},
		{"mru", fmtBytes(n.Resources.MRU)},
		{"sru", fmtBytes(n.Resources.SRU)},
		{"hru", fmtBytes(n.Resources.HRU)},
		{"healthy", s.healthCell(n)},
		{"status report", statusAt(n.StatusAt)},
		{"free", freeText(n.Free)},
		{"secure boot", s.out.yesNo(n.SecureBoot)},
		{"virtualized", s.out.yesNo(n.Virtualized)},
		{"serial number", dash(n.SerialNumber)},
		{"zos version", dash(n.ZosVersion)},
		{"api", dash(strings.Join(n.APIEndpoints, ", "))},
		{"created", fmtTime(n.CreatedAt)},
		{"updated", fmtTime(n.UpdatedAt)},
	})
	if err != nil || len(n.Interfaces) == 0 {
		return err
	}
	if _, err := fmt.Fprintln(s.env.Stdout); err != nil {
		return err
	}
	rows := make([][]string, 0, len(n.Interfaces))
	for _, i := range n.Interfaces {
		rows = append(rows, []string{i.Name, dash(i.Mac), dash(strings.Join(i.IPs, ", "))})
	}
	return s.out.table([]string{"INTERFACE", "MAC", "IPS"}, rows)
}
