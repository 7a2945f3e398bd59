package gridctl

import (
	"context"
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

func newFarmCommand(env Env) *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "farm",
		Short: "Create, list, show and update farms; their prices and SLA",
		Long: `Create, list, show and update farms. A farm belongs to the twin that created
it; only that twin can change it and approve its nodes (see 'gridctl node').`,
		Example: `  gridctl farm create --name myfarm --mnemonic-file ~/.grid/mnemonic
  gridctl farm list --mine --mnemonic-file ~/.grid/mnemonic
  gridctl farm show 3`,
		Args: noArgs,
		RunE: showHelp,
	}
	remote.register(cmd)
	cmd.AddCommand(newFarmCreateCommand(env, &remote), newFarmListCommand(env, &remote),
		newFarmShowCommand(env, &remote), newFarmUpdateCommand(env, &remote),
		newFarmPricingCommand(env, &remote), newFarmSLACommand(env, &remote))
	return cmd
}

func newFarmCreateCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id   identityFlags
		farm client.NewFarm // the flags fill it
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a farm owned by your twin",
		Long: `Create a farm owned by your twin and print it. The name is 1 to 40 ASCII
letters and digits, unique on the registrar regardless of case. The Stellar
address (optional) is the account that receives the farm's rewards.`,
		Example: `  gridctl farm create --name myfarm --mnemonic-file ~/.grid/mnemonic
  gridctl farm create --name rack2 --dedicated --stellar-address GA7…XYZ -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if farm.Name == "" {
				return errors.New("--name is required")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			farmID, err := s.client.CreateFarm(ctx, farm)
			if err != nil {
				return s.explain(err)
			}
			return s.showFarm(ctx, farmID)
		},
	}
	id.register(cmd)
	cmd.Flags().StringVar(&farm.Name, "name", "", "farm `NAME`: 1 to 40 ASCII letters and digits (required)")
	cmd.Flags().StringVar(&farm.StellarAddress, "stellar-address", "", "Stellar `ADDRESS` (G…) receiving the farm's rewards")
	cmd.Flags().BoolVar(&farm.Dedicated, "dedicated", false, "the farm rents out whole nodes only")
	return cmd
}

func newFarmListCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		owner ownerFlags
		name  string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List farms, optionally by owner or name",
		Long: `List farms ordered by id, all of them (fetched page by page) unless filtered
by owner (--twin, or --mine for your own twin) or by a part of the name.`,
		Example: `  gridctl farm list
  gridctl farm list --mine --mnemonic-file ~/.grid/mnemonic
  gridctl farm list --name rack -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := owner.check(); err != nil {
				return err
			}
			ctx, cancel, s, err := remote.open(cmd, env, owner.identity())
			if err != nil {
				return err
			}
			defer cancel()
			twin, err := owner.twinID(ctx, s)
			if err != nil {
				return err
			}
			farms := []api.Farm{}
			for f, err := range s.client.Farms(ctx, client.FarmFilter{TwinID: twin, Name: name}) {
				if err != nil {
					return s.explain(err)
				}
				farms = append(farms, f)
			}
			if s.out.json {
				return s.out.JSON(farms)
			}
			rows := make([][]string, 0, len(farms))
			for _, f := range farms {
				rows = append(rows, []string{
					strconv.FormatUint(f.FarmID, 10), f.FarmName, strconv.FormatUint(f.TwinID, 10),
					s.out.yesNo(f.Dedicated), dash(f.StellarAddress), fmtTime(f.CreatedAt),
				})
			}
			return s.out.table([]string{"FARM", "NAME", "TWIN", "DEDICATED", "STELLAR ADDRESS", "CREATED"}, rows)
		},
	}
	owner.register(cmd, "farms")
	cmd.Flags().StringVar(&name, "name", "", "only farms whose name contains `TEXT` (ignoring case)")
	return cmd
}

func newFarmShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	return newShowCommand(env, remote, &cobra.Command{
		Use:   "show FARM_ID",
		Short: "Show one farm",
		Example: `  gridctl farm show 3
  gridctl farm show 3 -o json`,
	}, "farm id", (*client.Client).Farm, (*session).printFarm)
}

func newFarmUpdateCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id        identityFlags
		name      string
		stellar   string
		dedicated bool
	)
	cmd := &cobra.Command{
		Use:   "update FARM_ID",
		Short: "Rename a farm you own, or change its Stellar address or dedication",
		Long: `Change a farm your twin owns, then print it. Only the fields given change;
--dedicated=false makes a dedicated farm shared again.`,
		Example: `  gridctl farm update 3 --name newname --mnemonic-file ~/.grid/mnemonic
  gridctl farm update 3 --stellar-address GA7…XYZ --dedicated=false`,
		Args: exactlyOneID("farm id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("farm id", args)
			var u api.UpdateFarmRequest
			if cmd.Flags().Changed("name") {
				u.FarmName = &name
			}
			if cmd.Flags().Changed("stellar-address") {
				u.StellarAddress = &stellar
			}
			if cmd.Flags().Changed("dedicated") {
				u.Dedicated = &dedicated
			}
			if u == (api.UpdateFarmRequest{}) {
				return errors.New("nothing to change: give --name, --stellar-address or --dedicated")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			if err := s.client.UpdateFarm(ctx, ids[0], u); err != nil {
				return s.explain(err)
			}
			return s.showFarm(ctx, ids[0])
		},
	}
	id.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "new farm `NAME`")
	cmd.Flags().StringVar(&stellar, "stellar-address", "", "new Stellar `ADDRESS` (G…)")
	cmd.Flags().BoolVar(&dedicated, "dedicated", false, "whether the farm rents out whole nodes only")
	return cmd
}

// showFarm fetches farm id and prints it.
func (s *session) showFarm(ctx context.Context, id uint64) error {
	f, err := s.client.Farm(ctx, id)
	if err != nil {
		return s.explain(err)
	}
	return s.printFarm(f)
}

// printFarm prints one farm.
func (s *session) printFarm(f api.Farm) error {
	if s.out.json {
		return s.out.JSON(f)
	}
	return s.out.fields([][2]string{
		{"farm id", strconv.FormatUint(f.FarmID, 10)},
		{"name", f.FarmName},
		{"twin id", strconv.FormatUint(f.TwinID, 10)},
		{"dedicated", s.out.yesNo(f.Dedicated)},
		{"stellar address", dash(f.StellarAddress)},
		{"created", fmtTime(f.CreatedAt)},
		{"updated", fmtTime(f.UpdatedAt)},
	})
}
