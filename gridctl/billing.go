package gridctl

import (
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

func newAccountBalanceCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id   identityFlags
		twin uint64
	)
	cmd := &cobra.Command{
		Use:   "balance",
		Short: "Show your balance (or, for an admin, a twin's)",
		Long: `Show the balance of your twin, or of --twin (admins), in µTFT and TFT.
Below zero, your contracts are in grace: credit the account to resume them.`,
		Example: `  gridctl account balance --mnemonic-file ~/.grid/mnemonic
  gridctl account balance --twin 7 --mnemonic-file ~/.grid/admin -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			b, err := s.client.Balance(ctx, twin)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(b)
			}
			return s.out.fields([][2]string{
				{"account", b.Account},
				{"balance", strconv.FormatInt(b.Balance, 10) + " µTFT (" + fmtTFT(b.Balance) + ")"},
			})
		},
	}
	id.register(cmd)
	cmd.Flags().Uint64Var(&twin, "twin", 0, "another twin's `ID` (admins)")
	return cmd
}

func newAccountStatementCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id          identityFlags
		twin, after uint64
		limit       uint64
		farmID      uint64
	)
	cmd := &cobra.Command{
		Use:   "statement",
		Short: "List the ledger lines of your account (bills, discounts, credits)",
		Long: `List the ledger lines of your twin (or of --twin, admins; or of the farm
--farm you own), oldest first: each bill, SLA discount and credit with its
contract and period. --after continues after a line id.`,
		Example: `  gridctl account statement --mnemonic-file ~/.grid/mnemonic
  gridctl account statement --farm 3 --after 120 --limit 20 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if twin != 0 && farmID != 0 {
				return errors.New("give --twin or --farm, not both")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			var lines []api.LedgerLine
			if farmID != 0 {
				lines, err = s.client.FarmLedger(ctx, farmID, after, limit)
			} else {
				lines, err = s.client.Ledger(ctx, twin, after, limit)
			}
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(lines)
			}
			rows := make([][]string, 0, len(lines))
			for _, l := range lines {
				period, contract := "-", "-"
				if l.PeriodStart != nil {
					period = fmtTime(*l.PeriodStart)
				}
				if l.ContractID != 0 {
					contract = strconv.FormatUint(l.ContractID, 10)
				}
				rows = append(rows, []string{strconv.FormatUint(l.ID, 10), fmtTime(l.Time), l.Kind, contract, period,
					strconv.FormatInt(l.Amount, 10), dash(l.Reference)})
			}
			return s.out.table([]string{"LINE", "TIME", "KIND", "CONTRACT", "PERIOD", "AMOUNT µTFT", "REFERENCE"}, rows)
		},
	}
	id.register(cmd)
	cmd.Flags().Uint64Var(&twin, "twin", 0, "another twin's `ID` (admins)")
	cmd.Flags().Uint64Var(&farmID, "farm", 0, "the ledger of this farm `ID` (its owner)")
	cmd.Flags().Uint64Var(&after, "after", 0, "only lines after this line `ID`")
	cmd.Flags().Uint64Var(&limit, "limit", 0, "at most `N` lines (default the registrar's page size, at most 100)")
	return cmd
}

func newAccountCreditCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id        identityFlags
		amount    int64
		reference string
	)
	cmd := &cobra.Command{
		Use:   "credit TWIN_ID",
		Short: "Credit a twin's balance (registrar admins)",
		Long: `Add --amount µTFT to a twin's balance, recorded with --reference (a payment's
id): the same reference and amount again changes nothing, so a payment
integration may repeat it safely. Admin twins of the registrar only.`,
		Example: `  gridctl account credit 7 --amount 5000000 --reference invoice-42 --mnemonic-file ~/.grid/admin`,
		Args:    exactlyOneID("twin id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("twin id", args)
			switch {
			case amount <= 0:
				return errors.New("--amount is required: a positive number of µTFT")
			case reference == "":
				return errors.New("--reference is required (a payment's id)")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			b, err := s.client.Credit(ctx, ids[0], amount, reference)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(b)
			}
			return s.out.fields([][2]string{{"account", b.Account}, {"balance", strconv.FormatInt(b.Balance, 10) + " µTFT (" + fmtTFT(b.Balance) + ")"}})
		},
	}
	id.register(cmd)
	cmd.Flags().Int64Var(&amount, "amount", 0, "`µTFT` to credit (1 TFT = 1000000)")
	cmd.Flags().StringVar(&reference, "reference", "", "the payment's `ID`, making the credit idempotent")
	return cmd
}

func newFarmPricingCommand(env Env, remote *remoteFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pricing",
		Short: "Show or set a farm's prices",
		Long: `Show or set a farm's prices per hour, in µTFT (1 TFT = 1000000): per logical
CPU, per GiB of memory, SSD and HDD, per public IPv4 address. New contracts
pay new prices at once; existing ones after the registrar's notice period.`,
		Args: noArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newFarmPricingShowCommand(env, remote), newFarmPricingSetCommand(env, remote))
	return cmd
}

func newFarmPricingShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	return newShowCommand(env, remote, &cobra.Command{
		Use:     "show FARM_ID",
		Short:   "Show a farm's prices, scheduled changes and history",
		Example: `  gridctl farm pricing show 3`,
	}, "farm id", (*client.Client).FarmPricing, (*session).printPricing)
}

func newFarmPricingSetCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id identityFlags
		p  api.Prices
	)
	cmd := &cobra.Command{
		Use:   "set FARM_ID",
		Short: "Set the prices of a farm you own",
		Long: `Set the prices of a farm your twin owns, in µTFT per unit and hour; a price
not given keeps its current value (--cru 0 makes CPUs free). Prints the farm's
pricing after the change.`,
		Example: `  gridctl farm pricing set 3 --cru 100000 --mru 50000 --sru 1000 --hru 100 --ipv4 20000 --mnemonic-file ~/.grid/mnemonic`,
		Args:    exactlyOneID("farm id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("farm id", args)
			changed := cmd.Flags().Changed
			if !changed("cru") && !changed("mru") && !changed("sru") && !changed("hru") && !changed("ipv4") {
				return errors.New("nothing to change: give --cru, --mru, --sru, --hru or --ipv4")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			// The registrar takes a whole setting: a farmer changing one
			// price must not make the others free, so the ones not given
			// come from the current setting.
			cur, err := s.client.FarmPricing(ctx, ids[0])
			if err != nil {
				return s.explain(err)
			}
			c := cur.Current
			for _, f := range []struct {
				flag     string
				set, cur *int64
			}{{"cru", &p.CRU, &c.CRU}, {"mru", &p.MRU, &c.MRU}, {"sru", &p.SRU, &c.SRU}, {"hru", &p.HRU, &c.HRU}, {"ipv4", &p.IPv4, &c.IPv4}} {
				if !changed(f.flag) {
					*f.set = *f.cur
				}
			}
			fp, err := s.client.SetFarmPricing(ctx, ids[0], p)
			if err != nil {
				return s.explain(err)
			}
			return s.printPricing(fp)
		},
	}
	id.register(cmd)
	cmd.Flags().Int64Var(&p.CRU, "cru", 0, "`µTFT` per logical CPU and hour")
	cmd.Flags().Int64Var(&p.MRU, "mru", 0, "`µTFT` per GiB of memory and hour")
	cmd.Flags().Int64Var(&p.SRU, "sru", 0, "`µTFT` per GiB of SSD and hour")
	cmd.Flags().Int64Var(&p.HRU, "hru", 0, "`µTFT` per GiB of HDD and hour")
	cmd.Flags().Int64Var(&p.IPv4, "ipv4", 0, "`µTFT` per public IPv4 address and hour")
	return cmd
}

// printPricing prints a farm's pricing: one row per setting.
func (s *session) printPricing(fp api.FarmPricing) error {
	if s.out.json {
		return s.out.JSON(fp)
	}
	row := func(what string, p api.Prices) []string {
		return []string{what, strconv.FormatInt(p.CRU, 10), strconv.FormatInt(p.MRU, 10), strconv.FormatInt(p.SRU, 10),
			strconv.FormatInt(p.HRU, 10), strconv.FormatInt(p.IPv4, 10)}
	}
	rows := [][]string{row("new contracts", fp.Current), row("existing contracts", fp.Effective)}
	for _, sc := range fp.Scheduled {
		rows = append(rows, row("from "+fmtTime(sc.EffectiveAt), sc.Prices))
	}
	for _, h := range fp.History {
		rows = append(rows, row("set "+fmtTime(h.SetAt), h.Prices))
	}
	return s.out.table([]string{"PRICES µTFT/H", "CRU", "MRU/GIB", "SRU/GIB", "HRU/GIB", "IPV4"}, rows)
}

func newFarmSLACommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id  identityFlags
		sla api.SLA
	)
	cmd := &cobra.Command{
		Use:   "sla FARM_ID",
		Short: "Show a farm's uptime promise, or set it (its owner)",
		Long: `Without flags, show the farm's uptime promise. With --uptime and --discount
(its owner), set it: a period in which a node was online less than --uptime
percent of the hour is billed --discount percent less.`,
		Example: `  gridctl farm sla 3
  gridctl farm sla 3 --uptime 99 --discount 50 --mnemonic-file ~/.grid/mnemonic`,
		Args: exactlyOneID("farm id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("farm id", args)
			set := cmd.Flags().Changed("uptime") || cmd.Flags().Changed("discount")
			if set && !(cmd.Flags().Changed("uptime") && cmd.Flags().Changed("discount")) {
				return errors.New("give both --uptime and --discount")
			}
			ctx, cancel, s, err := remote.open(cmd, env, id.when(set))
			if err != nil {
				return err
			}
			defer cancel()
			if set {
				err = s.client.SetFarmSLA(ctx, ids[0], sla)
			}
			if err == nil {
				sla, err = s.client.FarmSLA(ctx, ids[0])
			}
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(sla)
			}
			return s.out.fields([][2]string{
				{"uptime percent", strconv.FormatUint(uint64(sla.UptimePercent), 10)},
				{"discount percent", strconv.FormatUint(uint64(sla.DiscountPercent), 10)},
			})
		},
	}
	id.register(cmd)
	cmd.Flags().Uint32Var(&sla.UptimePercent, "uptime", 0, "promised online `PERCENT` of each hour (0 to 100)")
	cmd.Flags().Uint32Var(&sla.DiscountPercent, "discount", 0, "`PERCENT` off a period below the promise (0 to 100)")
	return cmd
}
