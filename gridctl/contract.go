package gridctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

func newContractCommand(env Env) *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Create, list, show and cancel contracts with nodes",
		Long: `Create, list, show and cancel contracts. A node contract reserves resources on
a node for one deployment (its hash); a rent contract takes a whole node.
Active contracts are billed every hour from your balance ('gridctl account
balance'); see docs/contracts.md.`,
		Example: `  gridctl contract create --node 7 --hash 9f86d0… --cru 2 --mru 4GiB --sru 50GiB --mnemonic-file ~/.grid/mnemonic
  gridctl contract create --node 7 --rent --mnemonic-file ~/.grid/mnemonic
  gridctl contract list --mine --mnemonic-file ~/.grid/mnemonic
  gridctl contract cancel 12 --mnemonic-file ~/.grid/mnemonic`,
		Args: noArgs,
		RunE: showHelp,
	}
	remote.register(cmd)
	cmd.AddCommand(newContractCreateCommand(env, &remote), newContractListCommand(env, &remote),
		newContractShowCommand(env, &remote), newContractCancelCommand(env, &remote))
	return cmd
}

func newContractCreateCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id         identityFlags
		node       uint64
		rent       bool
		hash, file string
		res        api.Capacity
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a node contract (a deployment's hash and resources) or rent a node",
		Long: `Make a contract for your twin and print it. A node contract is made for a
deployment: --deployment FILE computes its hash and the resources it needs
from the file, as 'gridctl deploy' would send it (then deploy it with
'gridctl deploy --contract ID FILE'); or give the hash (--hash, hex) and the
resources (--cru, --mru, --sru, --hru, --ipv4; at most the node's capacity).
--rent takes the whole node instead. It is billed every hour from your
balance at the farm's prices.`,
		Example: `  gridctl contract create --node 7 --deployment vm.json
  gridctl contract create --node 7 --hash 9f86d0… --cru 2 --mru 4GiB --sru 50GiB --ipv4 1
  gridctl contract create --node 7 --rent -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.CreateContractRequest{NodeID: node, Type: api.ContractNode, DeploymentHash: hash, Resources: &res}
			switch {
			case node == 0:
				return errors.New("--node is required")
			case rent && (hash != "" || file != "" || res != api.Capacity{}):
				return errors.New("--rent takes the whole node: give no --deployment, --hash or resources")
			case rent:
				req = api.CreateContractRequest{NodeID: node, Type: api.ContractRent}
			case file != "" && (hash != "" || res != api.Capacity{}):
				return errors.New("--deployment gives the hash and the resources: give no --hash or resources with it")
			case file == "" && hash == "":
				return errors.New("--deployment FILE or --hash is required for a node contract (or give --rent)")
			}
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			if file != "" {
				if req.DeploymentHash, res, err = s.deploymentTerms(ctx, file); err != nil {
					return err
				}
			}
			c, err := s.client.CreateContract(ctx, req)
			if err != nil {
				return s.explain(err)
			}
			return s.printContract(c)
		},
	}
	id.register(cmd)
	cmd.Flags().Uint64Var(&node, "node", 0, "the node `ID` (required)")
	cmd.Flags().BoolVar(&rent, "rent", false, "rent the whole node")
	cmd.Flags().StringVar(&file, "deployment", "", "the deployment `FILE` (\"-\" for standard input) the contract is for: its hash and resources")
	cmd.Flags().StringVar(&hash, "hash", "", "the deployment's `HEX` hash")
	cmd.Flags().Uint64Var(&res.CRU, "cru", 0, "logical CPUs to reserve")
	cmd.Flags().Var((*sizeFlag)(&res.MRU), "mru", "memory to reserve (`SIZE`, e.g. 4GiB)")
	cmd.Flags().Var((*sizeFlag)(&res.SRU), "sru", "SSD storage to reserve (`SIZE`)")
	cmd.Flags().Var((*sizeFlag)(&res.HRU), "hru", "HDD storage to reserve (`SIZE`)")
	cmd.Flags().Uint64Var(&res.IPv4, "ipv4", 0, "public IPv4 addresses to reserve")
	return cmd
}

func newContractListCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		owner  ownerFlags
		filter client.ContractFilter
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List contracts, by twin, node or state",
		Long: `List contracts ordered by id, all of them (fetched page by page) unless
filtered by twin (--twin, or --mine for your own), node or state.`,
		Example: `  gridctl contract list --mine --mnemonic-file ~/.grid/mnemonic
  gridctl contract list --node 7 --state grace -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := owner.check(); err != nil {
				return err
			}
			switch filter.State {
			case "", api.StateActive, api.StateGrace, api.StateDeleted:
			default:
				return fmt.Errorf("--state %q: want active, grace or deleted", filter.State)
			}
			ctx, cancel, s, err := remote.open(cmd, env, owner.identity())
			if err != nil {
				return err
			}
			defer cancel()
			if filter.TwinID, err = owner.twinID(ctx, s); err != nil {
				return err
			}
			all := []api.Contract{}
			for k, err := range s.client.Contracts(ctx, filter) {
				if err != nil {
					return s.explain(err)
				}
				all = append(all, k)
			}
			return s.printContracts(all)
		},
	}
	owner.register(cmd, "contracts")
	cmd.Flags().Uint64Var(&filter.NodeID, "node", 0, "only contracts on this node `ID`")
	cmd.Flags().StringVar(&filter.State, "state", "", "only contracts in this `STATE`: active, grace or deleted")
	return cmd
}

// printContracts prints a list of contracts.
func (s *session) printContracts(cs []api.Contract) error {
	if s.out.json {
		return s.out.JSON(cs)
	}
	rows := make([][]string, 0, len(cs))
	for _, c := range cs {
		r := c.Resources
		rows = append(rows, []string{
			strconv.FormatUint(c.ContractID, 10), c.Type, strconv.FormatUint(c.TwinID, 10), strconv.FormatUint(c.NodeID, 10),
			c.State, strconv.FormatUint(r.CRU, 10), fmtBytes(r.MRU), fmtBytes(r.SRU), fmtBytes(r.HRU), strconv.FormatUint(r.IPv4, 10),
			dash(c.DeploymentHash), fmtTime(c.CreatedAt),
		})
	}
	return s.out.table([]string{"CONTRACT", "TYPE", "TWIN", "NODE", "STATE", "CRU", "MRU", "SRU", "HRU", "IPV4", "HASH", "CREATED"}, rows)
}

func newContractShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	return newShowCommand(env, remote, &cobra.Command{
		Use:   "show CONTRACT_ID",
		Short: "Show one contract",
		Example: `  gridctl contract show 12
  gridctl contract show 12 -o json`,
	}, "contract id", (*client.Client).Contract, (*session).printContract)
}

func newContractCancelCommand(env Env, remote *remoteFlags) *cobra.Command {
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "cancel CONTRACT_ID",
		Short: "Cancel a contract of yours (the node removes its workloads)",
		Long: `Cancel a contract of your twin and print it: it becomes deleted, billing
stops, and the node removes the deployment. Cancelling it again changes
nothing.`,
		Example: `  gridctl contract cancel 12 --mnemonic-file ~/.grid/mnemonic`,
		Args:    exactlyOneID("contract id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("contract id", args)
			ctx, cancel, s, err := remote.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			c, err := s.client.CancelContract(ctx, ids[0])
			if err != nil {
				return s.explain(err)
			}
			return s.printContract(c)
		},
	}
	id.register(cmd)
	return cmd
}

// printContract prints one contract.
func (s *session) printContract(c api.Contract) error {
	if s.out.json {
		return s.out.JSON(c)
	}
	r := c.Resources
	pairs := [][2]string{
		{"contract id", strconv.FormatUint(c.ContractID, 10)},
		{"type", c.Type},
		{"twin id", strconv.FormatUint(c.TwinID, 10)},
		{"node id", strconv.FormatUint(c.NodeID, 10)},
		{"state", c.State},
		{"deployment hash", dash(c.DeploymentHash)},
		{"resources", fmt.Sprintf("cru %d, mru %s, sru %s, hru %s, ipv4 %d", r.CRU, fmtBytes(r.MRU), fmtBytes(r.SRU), fmtBytes(r.HRU), r.IPv4)},
		{"created", fmtTime(c.CreatedAt)},
		{"billed until", fmtTime(c.BilledUntil)},
	}
	if c.GraceSince != nil {
		pairs = append(pairs, [2]string{"grace since", fmtTime(*c.GraceSince)})
	}
	if c.DeletedAt != nil {
		pairs = append(pairs, [2]string{"deleted", fmtTime(*c.DeletedAt) + " (" + c.DeletedReason + ")"})
	}
	return s.out.fields(pairs)
}

// fmtTFT renders an amount of µTFT as "1.500000 TFT".
func fmtTFT(utft int64) string {
	sign, u := "", uint64(utft)
	if utft < 0 {
		sign, u = "-", uint64(-(utft+1))+1
	}
	return fmt.Sprintf("%s%d.%06d TFT", sign, u/api.MicroTFT, u%api.MicroTFT)
}

// sizeFlag is a flag of a byte size (4GiB, 512MiB, 1073741824), as
// flagvalue.Size reads it.
type sizeFlag flagvalue.Size

func (f *sizeFlag) String() string     { return (*flagvalue.Size)(f).String() }
func (f *sizeFlag) Set(s string) error { return (*flagvalue.Size)(f).Set(s) }
func (f *sizeFlag) Type() string       { return "SIZE" }

// deploymentTerms reads a deployment file as 'gridctl deploy' sends it,
// for this session's twin, and returns its hash and the resources it
// needs: what its node contract records.
func (s *session) deploymentTerms(ctx context.Context, file string) (string, api.Capacity, error) {
	d, err := readDeploymentFile(s.env, file)
	if err != nil {
		return "", api.Capacity{}, err
	}
	if d.ID != 0 {
		return "", api.Capacity{}, fmt.Errorf("%s has id %d: a contract is made for a new deployment", file, d.ID)
	}
	twin, err := s.client.TwinID(ctx)
	if err != nil {
		return "", api.Capacity{}, s.explain(err)
	}
	if err := prepareNew(&d, twin, file); err != nil {
		return "", api.Capacity{}, err
	}
	return contractTerms(&d)
}
