package gridctl

import (
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/api"
)

func newVersionCommand(env Env) *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show, set and list the approved ZOS version",
		Long: `Show, set and list the ZOS version the registrar approves. Nodes upgrade to
it when it is safe to upgrade, or, before that, when they are in one of its
test farms. Only the registrar's admin twins may set it.`,
		Example: `  gridctl version show
  gridctl version set v4.1.2 --test-farms 1,2 --mnemonic-file ~/.grid/admin
  gridctl version set v4.1.2 --safe-to-upgrade --mnemonic-file ~/.grid/admin
  gridctl version history`,
		Args: noArgs,
		RunE: showHelp,
	}
	remote.register(cmd)
	cmd.AddCommand(newVersionShowCommand(env, &remote), newVersionSetCommand(env, &remote), newVersionHistoryCommand(env, &remote))
	return cmd
}

func newVersionShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	var legacy bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the approved ZOS version and its rollout",
		Long: `Show the approved ZOS version, whether it is safe to upgrade, its test farms,
and who set it when. With --legacy, read it the way older nodes do
(GET /zos/version: base64 JSON without serial or author).`,
		Example: `  gridctl version show
  gridctl version show -o json
  gridctl version show --legacy`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, s, err := remote.open(cmd, env, nil)
			if err != nil {
				return err
			}
			defer cancel()
			var v api.ZosVersion
			if legacy {
				v, err = s.client.LegacyZosVersion(ctx)
			} else {
				v, err = s.client.ZosVersion(ctx)
			}
			if err != nil {
				return s.explain(err)
			}
			return s.printVersion(v)
		},
	}
	cmd.Flags().BoolVar(&legacy, "legacy", false, "read the compatibility endpoint older nodes use")
	return cmd
}

func newVersionSetCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id        identityFlags
		safe      bool
		testFarms []uint
		legacy    bool
	)
	cmd := &cobra.Command{
		Use:   "set VERSION",
		Short: "Set the approved ZOS version (registrar admins only)",
		Long: `Set the approved ZOS version and its rollout, then print it with the serial
the registrar gave it. Without --safe-to-upgrade only nodes of the --test-farms
upgrade; set it again with --safe-to-upgrade to roll it out to every node.
Setting exactly the current value fails with 409. With --legacy, use the
compatibility endpoint (PUT /zos/version), which cannot carry test farms.`,
		Example: `  gridctl version set v4.1.2 --test-farms 1,2 --mnemonic-file ~/.grid/admin
  gridctl version set v4.1.2 --safe-to-upgrade --mnemonic-file ~/.grid/admin
  gridctl version set v4.1.2 --safe-to-upgrade --legacy`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
				return errors.New(`"gridctl version set" takes the version, e.g. v4.1.2 (see 'gridctl version set --help')`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if legacy && len(testFarms) > 0 {
				return errors.New("--legacy cannot set --test-farms")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			version := strings.TrimSpace(args[0])
			if legacy {
				if err := s.client.SetLegacyZosVersion(ctx, version, safe); err != nil {
					return s.explain(err)
				}
				v, err := s.client.LegacyZosVersion(ctx)
				if err != nil {
					return s.explain(err)
				}
				return s.printVersion(v)
			}
			farms := make([]uint64, 0, len(testFarms))
			for _, f := range testFarms {
				if f == 0 {
					return errors.New("--test-farms: farm ids start at 1")
				}
				farms = append(farms, uint64(f))
			}
			v, err := s.client.SetZosVersion(ctx, api.ZosVersion{Version: version, SafeToUpgrade: safe, TestFarms: farms})
			if err != nil {
				return s.explain(err)
			}
			return s.printVersion(v)
		},
	}
	id.register(cmd)
	cmd.Flags().BoolVar(&safe, "safe-to-upgrade", false, "every node may upgrade (default: only the test farms)")
	cmd.Flags().UintSliceVar(&testFarms, "test-farms", nil, "farm `IDS` that upgrade before it is safe, e.g. 1,2")
	cmd.Flags().BoolVar(&legacy, "legacy", false, "use the compatibility endpoint older tools use")
	return cmd
}

func newVersionHistoryCommand(env Env, remote *remoteFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the versions set so far, newest first",
		Example: `  gridctl version history
  gridctl version history --limit 5 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return errors.New("--limit: want 0 (all) or more")
			}
			ctx, cancel, s, err := remote.open(cmd, env, nil)
			if err != nil {
				return err
			}
			defer cancel()
			versions := []api.ZosVersion{}
			for v, err := range s.client.ZosVersions(ctx) {
				if err != nil {
					return s.explain(err)
				}
				versions = append(versions, v)
				if limit > 0 && len(versions) == limit {
					break
				}
			}
			if s.out.json {
				return s.out.JSON(versions)
			}
			rows := make([][]string, 0, len(versions))
			for _, v := range versions {
				rows = append(rows, []string{
					strconv.FormatUint(v.Serial, 10), v.Version, s.out.yesNo(v.SafeToUpgrade), dash(joinIDs(v.TestFarms)),
					strconv.FormatUint(v.SetBy, 10), fmtTime(v.CreatedAt),
				})
			}
			return s.out.table([]string{"SERIAL", "VERSION", "SAFE", "TEST FARMS", "SET BY", "SET AT"}, rows)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most `N` versions (0: all)")
	return cmd
}

// printVersion prints one version.
func (s *session) printVersion(v api.ZosVersion) error {
	if s.out.json {
		if v.TestFarms == nil {
			v.TestFarms = []uint64{}
		}
		return s.out.JSON(v)
	}
	pairs := [][2]string{
		{"version", v.Version},
		{"safe to upgrade", s.out.yesNo(v.SafeToUpgrade)},
		{"test farms", dash(joinIDs(v.TestFarms))},
	}
	if v.Serial != 0 {
		pairs = append(pairs, [2]string{"serial", strconv.FormatUint(v.Serial, 10)})
	}
	if v.SetBy != 0 {
		pairs = append(pairs, [2]string{"set by twin", strconv.FormatUint(v.SetBy, 10)})
	}
	if !v.CreatedAt.IsZero() {
		pairs = append(pairs, [2]string{"set at", fmtTime(v.CreatedAt)})
	}
	return s.out.fields(pairs)
}

// joinIDs renders ids as "1, 2".
func joinIDs(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ", ")
}
