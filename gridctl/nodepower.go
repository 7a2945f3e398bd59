package gridctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/api"
)

// newNodePowerCommand is `gridctl node power on|off|show NODE_ID`.
func newNodePowerCommand(env Env, remote *remoteFlags) *cobra.Command {
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "power on|off|show NODE_ID",
		Short: "Set or show a node's power target (farmers)",
		Long: `Set the power target of a node of your farm, or show it. A node whose target
is off powers itself off once it hosts no deployment (never before), after
telling the other nodes of its farm; when the target is on again, one of them
wakes it with Wake-on-LAN on their shared segment. A node without a target is
on. Setting needs the farm owner's identity; showing needs none.`,
		Example: `  gridctl node power off 12 --mnemonic-file ~/.grid/mnemonic
  gridctl node power on 12 --mnemonic-file ~/.grid/mnemonic
  gridctl node power show 12 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != api.PowerOn && args[0] != api.PowerOff && args[0] != "show") {
				return fmt.Errorf("%q needs on, off or show and a node id (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			_, err := parseIDs("node id", args[1:])
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, _ := parseIDs("node id", args[1:])
			signer := &id
			if args[0] == "show" {
				signer = nil
			}
			ctx, cancel, s, err := remote.open(cmd, env, signer)
			if err != nil {
				return err
			}
			defer cancel()
			var p api.NodePower
			if args[0] == "show" {
				p, err = s.client.PowerTarget(ctx, ids[0])
			} else {
				p, err = s.client.SetPowerTarget(ctx, ids[0], args[0])
			}
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(p)
			}
			set := "never set"
			if p.SetAt != nil {
				set = fmt.Sprintf("set by twin %d at %s", p.SetBy, fmtTime(*p.SetAt))
			}
			_, err = fmt.Fprintf(env.Stdout, "node %d: power target %s (%s)\n", p.NodeID, p.PowerTarget, set)
			return err
		},
	}
	id.register(cmd)
	return cmd
}
