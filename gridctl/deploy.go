package gridctl

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	zosrpc "github.com/grid4/grid4/node/zosapi/api"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// NodeEnv is the environment variable holding the node's id when --node
// is not given.
const NodeEnv = "GRID_NODE"

// NodeURLEnv is the environment variable holding the node's API URL when
// --node-url is not given.
const NodeURLEnv = "GRID_NODE_URL"

// TwinEnv is the environment variable holding your twin id when --twin is
// not given (saves a registrar lookup per command).
const TwinEnv = "GRID_TWIN"

// errNoNode is returned when no node is given.
var errNoNode = errors.New("no node: pass --node ID (looked up on the registrar) or --node-url URL, or set " + NodeEnv + " or " + NodeURLEnv)

// newDeployCommands returns "deploy" and the "deployment" group: what
// users run against a node's zos-api-light.
func newDeployCommands(env Env) []*cobra.Command {
	return []*cobra.Command{newDeployCommand(env), newDeploymentCommand(env)}
}

// nodeFlags are the flags of commands that call a node.
type nodeFlags struct {
	remote  remoteFlags
	node    string // the node's id, as given
	nodeURL string
	twin    uint64
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	f.remote.register(cmd)
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.node, "node", "", "node `ID`: its API's URL is looked up on the registrar (default $"+NodeEnv+")")
	fl.StringVar(&f.nodeURL, "node-url", "", "URL of the node's zos-api-light, e.g. http://node.example.org:2021 (default $"+NodeURLEnv+")")
	fl.Uint64Var(&f.twin, "twin", 0, "your twin `ID` (default $"+TwinEnv+", else looked up on the registrar by your key)")
}

// nodeSession is what a node command runs with.
type nodeSession struct {
	api  *zosclient.Client
	key  keys.KeyPair
	twin uint64
	out  *printer
	// node names the node in messages: its URL, and its id when given.
	node string
	// nodeID is the node's id when given (0: --node-url).
	nodeID uint64
	// reg is the registrar when one is configured (nil otherwise).
	reg *session
}

// nodeTarget is the node a command calls: its id (to look up) or its
// URL.
type nodeTarget struct {
	id  uint64
	url string
}

// target reads --node and --node-url (or their variables, a flag winning
// over both variables): exactly one of them.
func (f *nodeFlags) target(env Env) (nodeTarget, error) {
	id, url := strings.TrimSpace(f.node), strings.TrimSpace(f.nodeURL)
	idName, urlName := "--node", "--node-url"
	if id == "" && url == "" {
		id, url = strings.TrimSpace(env.Getenv(NodeEnv)), strings.TrimSpace(env.Getenv(NodeURLEnv))
		idName, urlName = NodeEnv, NodeURLEnv
	}
	switch {
	case id != "" && url != "":
		return nodeTarget{}, fmt.Errorf("both %s and %s given: pass one (the node's id or its URL)", idName, urlName)
	case url != "":
		return nodeTarget{url: url}, nil
	case id == "":
		return nodeTarget{}, errNoNode
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		if strings.Contains(id, "://") {
			return nodeTarget{}, fmt.Errorf("%s %q: want a node id; give a URL with %s", idName, id, urlName)
		}
		return nodeTarget{}, fmt.Errorf("%s %q: want a node id (a positive whole number)", idName, id)
	}
	return nodeTarget{id: n}, nil
}

// open loads the identity, finds its twin (--twin, or the registrar) and
// the node's URL (--node-url, or the registrar by --node) and builds the
// node client. The context carries --timeout.
func (f *nodeFlags) open(cmd *cobra.Command, env Env, id *identityFlags) (context.Context, context.CancelFunc, *nodeSession, error) {
	if err := f.remote.check(); err != nil {
		return nil, nil, nil, err
	}
	target, err := f.target(env)
	if err != nil {
		return nil, nil, nil, err
	}
	kp, err := id.load(cmd, env)
	if err != nil {
		return nil, nil, nil, err
	}
	twin, err := f.twinID(env)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.remote.timeout)
	fail := func(err error) (context.Context, context.CancelFunc, *nodeSession, error) {
		cancel()
		return nil, nil, nil, err
	}
	var reg *session // the registrar: needed for lookups, else when configured
	if twin == 0 || target.id != 0 {
		if reg, err = f.registrar(env, kp, twin == 0, target.id); err != nil {
			return fail(err)
		}
	} else if _, _, uerr := f.remote.url(env); uerr == nil {
		if reg, err = f.registrar(env, kp, false, 0); err != nil {
			return fail(err)
		}
	}
	if twin == 0 {
		if twin, err = reg.client.TwinID(ctx); err != nil {
			return fail(reg.explain(err))
		}
	}
	name := target.url
	if target.id != 0 {
		if target.url, err = reg.nodeAPI(ctx, target.id); err != nil {
			return fail(err)
		}
		name = fmt.Sprintf("%s (node %d)", target.url, target.id)
	}
	api, err := zosclient.New(target.url, kp, twin, nil)
	if err != nil {
		return fail(err)
	}
	return ctx, cancel, &nodeSession{api: api, key: kp, twin: twin, out: newPrinter(env, f.remote.output), node: name, nodeID: target.id, reg: reg}, nil
}

// twinID is --twin, else $GRID_TWIN, else 0 (look it up).
func (f *nodeFlags) twinID(env Env) (uint64, error) {
	if f.twin != 0 {
		return f.twin, nil
	}
	v := strings.TrimSpace(env.Getenv(TwinEnv))
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%s=%q: want a twin id", TwinEnv, v)
	}
	return id, nil
}

// registrar opens the registrar for the lookups a node command needs:
// the caller's twin (needTwin) and the node's API (node != 0).
func (f *nodeFlags) registrar(env Env, kp keys.KeyPair, needTwin bool, node uint64) (*session, error) {
	u, source, err := f.remote.url(env)
	if err != nil {
		if needTwin {
			return nil, errors.New("no twin: pass --twin ID (or set " + TwinEnv + "), or --registrar URL (or " + RegistrarEnv + ") to look it up by your key")
		}
		return nil, fmt.Errorf("node %d: pass --registrar URL (or set %s) to look up its API, or give --node-url", node, RegistrarEnv)
	}
	rc, err := regclient.New(u, regclient.WithIdentity(kp, 0), regclient.WithUserAgent("gridctl"),
		regclient.WithRetry(regclient.RetryPolicy{MaxAttempts: f.remote.retries + 1}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &session{env: env, flags: &f.remote, client: rc}, nil
}

// nodeAPI looks node id up on the registrar and returns the URL of its
// zos-api-light: the first of its endpoints that accepts a connection
// (a node may publish one per address, not all of them reachable from
// here), else the first.
func (s *session) nodeAPI(ctx context.Context, id uint64) (string, error) {
	n, err := s.client.Node(ctx, id)
	if errors.Is(err, regclient.ErrNotFound) {
		return "", wrapMsg(err, "node %d is not registered on the registrar at %s", id, s.client.Origin())
	}
	if err != nil {
		return "", s.explain(err)
	}
	switch len(n.APIEndpoints) {
	case 0:
		return "", fmt.Errorf("node %d publishes no zos-api-light endpoint on the registrar (it runs an older zosd, or cannot tell its address): give its URL with --node-url", id)
	case 1:
		return n.APIEndpoints[0], nil
	}
	for _, e := range n.APIEndpoints {
		if reachable(ctx, e) {
			return e, nil
		}
	}
	return n.APIEndpoints[0], nil
}

// reachable reports whether a TCP connection to the host of URL u opens
// within a few seconds.
func reachable(ctx context.Context, u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	port := pu.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[pu.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(pu.Hostname(), port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// makeContract makes the node contract d runs under on the registrar
// (for its hash and the resources it needs) and sets d.ContractID. Without
// a registrar, or when the node does not say its id (a development node),
// it makes none: the node refuses the deployment if it needs one.
func (s *nodeSession) makeContract(ctx context.Context, d *gridtypes.Deployment) error {
	if s.reg == nil {
		return nil
	}
	node := s.nodeID
	if node == 0 {
		v, err := s.api.Version(ctx)
		if err != nil {
			return s.explain(err)
		}
		if node = v.NodeID; node == 0 {
			return nil
		}
	}
	hash, need, err := contractTerms(d)
	if err != nil {
		return err
	}
	k, err := s.reg.client.CreateNodeContract(ctx, node, hash, need)
	if err != nil {
		return wrapMsg(err, "node contract on node %d: %s", node, s.reg.explain(err).Error())
	}
	d.ContractID = k.ContractID
	return nil
}

// prepareNew makes d, read from file, a new deployment of twin as
// deploy sends it (twin_id yours unless the file names one, versions 0)
// and validates it: what its hash is computed on.
func prepareNew(d *gridtypes.Deployment, twin uint64, file string) error {
	if d.TwinID == 0 {
		d.TwinID = twin
	}
	d.Version = 0
	for i := range d.Workloads {
		d.Workloads[i].Version = 0
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// contractTerms is what a node contract records of d: its hash and the
// resources it needs.
func contractTerms(d *gridtypes.Deployment) (string, regapi.Capacity, error) {
	hash, err := d.HashHex()
	if err != nil {
		return "", regapi.Capacity{}, err
	}
	need, err := d.Resources()
	if err != nil {
		return "", regapi.Capacity{}, err
	}
	return hash, regapi.Capacity{CRU: need.CRU, MRU: need.MRU, SRU: need.SRU, HRU: need.HRU, IPv4: need.IPv4}, nil
}

// updateContract points the node contract d runs under at d's hash and
// resources (PATCH /contracts/{id}), as the node requires before an
// update. Without a registrar, a contract, or for a rent contract, there is
// nothing to do.
func (s *nodeSession) updateContract(ctx context.Context, d *gridtypes.Deployment) error {
	if s.reg == nil || d.ContractID == 0 {
		return nil
	}
	k, err := s.reg.client.Contract(ctx, d.ContractID)
	if err != nil {
		return wrapMsg(err, "contract %d: %s", d.ContractID, s.reg.explain(err).Error())
	}
	if k.Type != regapi.ContractNode {
		return nil
	}
	hash, res, err := contractTerms(d)
	if err != nil {
		return err
	}
	if _, err := s.reg.client.UpdateContract(ctx, d.ContractID, regapi.UpdateContractRequest{DeploymentHash: &hash, Resources: &res}); err != nil {
		return wrapMsg(err, "update of contract %d: %s", d.ContractID, s.reg.explain(err).Error())
	}
	return nil
}

// explain words a node error for the one-line output.
func (s *nodeSession) explain(err error) error {
	if err == nil {
		return nil
	}
	var re *zosrpc.Error
	var he *zosclient.HTTPError
	switch {
	case errors.As(err, &re):
		return wrapMsg(err, "node refused: %s", re.Message)
	case errors.As(err, &he):
		if he.Status == 401 {
			return wrapMsg(err, "node refused the signature of twin %d: %s", s.twin, he.Message)
		}
		return wrapMsg(err, "node answered %d: %s", he.Status, he.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return wrapMsg(err, "node at %s did not answer in time (--timeout)", s.node)
	}
	var ne net.Error
	var op *net.OpError
	if errors.As(err, &ne) || errors.As(err, &op) {
		return wrapMsg(err, "cannot reach node at %s: %s", s.node, networkReason(err))
	}
	return err
}

// readDeploymentFile reads a deployment from a JSON file ("-": standard
// input).
func readDeploymentFile(env Env, path string) (gridtypes.Deployment, error) {
	var r io.Reader
	if path == "-" {
		r = env.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return gridtypes.Deployment{}, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, gridtypes.MaxDeploymentBytes+1))
	if err != nil {
		return gridtypes.Deployment{}, err
	}
	d, err := gridtypes.DecodeDeployment(data)
	if err != nil {
		return gridtypes.Deployment{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func newDeployCommand(env Env) *cobra.Command {
	var (
		nf       nodeFlags
		id       identityFlags
		wait     bool
		contract uint64
	)
	cmd := &cobra.Command{
		Use:   "deploy FILE",
		Short: "Deploy workloads on a node from a JSON deployment file",
		Long: `Deploy the workloads of a JSON deployment file ("-" for standard input) on a
node. The file holds the deployment's workloads (and optionally description,
metadata and a signature requirement); gridctl sets twin_id to your twin,
signs the deployment and sends it to the node's zos-api-light. The node checks
everything (types, data, signatures, capacity, contract) before it queues
anything.

A node runs a deployment under a contract (docs/contracts.md): unless
--contract names one (a node contract made for this deployment, or your rent
contract of the node), gridctl first makes a node contract on the registrar
for the deployment's hash and the resources it needs, billed at the farm's
prices from then on. Without a registrar and with --node-url, none is made:
the node says whether it needs one.

Your twin is --twin or ` + TwinEnv + `, else looked up on the registrar
(--registrar or ` + RegistrarEnv + `) by your key. The node is --node ID (or
` + NodeEnv + `), whose API gridctl finds on the registrar, or --node-url URL (or
` + NodeURLEnv + `).
Workload types and their data: docs/provisioning.md.`,
		Example: `  export ` + RegistrarEnv + `=https://registrar.example.org
  gridctl deploy vm.json --node 12 --mnemonic-file ~/.grid/mnemonic --wait
  gridctl deploy vm.json --node-url http://node.example.org:2021 --mnemonic-file ~/.grid/mnemonic`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := readDeploymentFile(env, args[0])
			if err != nil {
				return err
			}
			if d.ID != 0 {
				return fmt.Errorf("%s has id %d: change an existing deployment with 'gridctl deployment update %d %s'", args[0], d.ID, d.ID, args[0])
			}
			ctx, cancel, s, err := nf.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			if contract != 0 {
				d.ContractID = contract
			}
			if err := prepareNew(&d, s.twin, args[0]); err != nil {
				return err
			}
			if d.ContractID == 0 {
				if err := s.makeContract(ctx, &d); err != nil {
					return err
				}
			}
			if err := d.Sign(s.twin, s.key); err != nil {
				return err
			}
			rec, err := s.api.Deploy(ctx, d)
			return s.printOutcome(ctx, rec.Deployment.ID, rec, err, wait)
		},
	}
	nf.register(cmd)
	id.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the node has processed the deployment")
	cmd.Flags().Uint64Var(&contract, "contract", 0, "run the deployment under this contract `ID` (default: make a node contract for it on the registrar)")
	return cmd
}

func newDeploymentCommand(env Env) *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "deployment",
		Short: "List, show, update, pause, resume and delete your deployments on a node",
		Long: `List, show, update, pause, resume and delete your deployments on a node, and
see their history. Only a deployment's owner can see or change it.`,
		Example: `  gridctl deployment list --node 12 --mnemonic-file ~/.grid/mnemonic
  gridctl deployment list --node-url http://node.example.org:2021
  gridctl deployment show 3
  gridctl deployment pause 3 --wait`,
		Args: noArgs,
		RunE: showHelp,
	}
	nf.register(cmd)
	cmd.AddCommand(
		newDeploymentListCommand(env, &nf),
		newDeploymentIDCommand(env, &nf, "show", "Show a deployment and the state of its workloads", nil),
		newDeploymentIDCommand(env, &nf, "delete", "Remove all the workloads of a deployment", (*zosclient.Client).Delete),
		newDeploymentIDCommand(env, &nf, "pause", "Suspend the workloads of a deployment that can be suspended", (*zosclient.Client).Pause),
		newDeploymentIDCommand(env, &nf, "resume", "Resume the paused workloads of a deployment", (*zosclient.Client).Resume),
		newDeploymentUpdateCommand(env, &nf),
		newDeploymentChangesCommand(env, &nf),
	)
	return cmd
}

func newDeploymentListCommand(env Env, nf *nodeFlags) *cobra.Command {
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your deployments on the node",
		Example: `  gridctl deployment list --node 12 --mnemonic-file ~/.grid/mnemonic
  gridctl deployment list --node-url http://node.example.org:2021 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, s, err := nf.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			list, err := s.api.List(ctx)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(list)
			}
			rows := make([][]string, 0, len(list))
			for _, d := range list {
				state := "deleted"
				if !d.Deleted {
					state = countStates(d.Workloads)
				}
				rows = append(rows, []string{strconv.FormatUint(d.ID, 10), strconv.FormatUint(uint64(d.Version), 10), state, dash(d.Pending), dash(d.Description), fmtTime(d.Updated)})
			}
			return s.out.table([]string{"ID", "VERSION", "WORKLOADS", "PENDING", "DESCRIPTION", "UPDATED"}, rows)
		},
	}
	id.register(cmd)
	return cmd
}

// countStates renders workload counts as "3 ok, 1 error".
func countStates(m map[gridtypes.State]int) string {
	var parts []string
	for _, st := range []gridtypes.State{gridtypes.StateOk, gridtypes.StateInit, gridtypes.StatePaused, gridtypes.StateError, gridtypes.StateDeleted} {
		if n := m[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return dash(strings.Join(parts, ", "))
}

// onDeployment is the action of a command on one deployment (its
// argument, checked by exactlyOneID): it opens a session with id and runs
// run on the deployment.
func onDeployment(env Env, nf *nodeFlags, id *identityFlags, run func(ctx context.Context, s *nodeSession, depID uint64) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		depID, _ := strconv.ParseUint(strings.TrimSpace(args[0]), 10, 64)
		ctx, cancel, s, err := nf.open(cmd, env, id)
		if err != nil {
			return err
		}
		defer cancel()
		return run(ctx, s, depID)
	}
}

// newDeploymentIDCommand makes a command on one deployment: show when op
// is nil, else the operation (delete, pause, resume).
func newDeploymentIDCommand(env Env, nf *nodeFlags, name, short string, op func(*zosclient.Client, context.Context, uint64) (gridtypes.Record, error)) *cobra.Command {
	var (
		id   identityFlags
		wait bool
	)
	example := "  gridctl deployment " + name + " 3 --node 12 --mnemonic-file ~/.grid/mnemonic"
	if op != nil {
		example += "\n  gridctl deployment " + name + " 3 --wait"
	}
	cmd := &cobra.Command{
		Use:     name + " ID",
		Short:   short,
		Example: example,
		Args:    exactlyOneID("deployment id"),
		RunE: onDeployment(env, nf, &id, func(ctx context.Context, s *nodeSession, depID uint64) error {
			if op == nil {
				rec, err := s.api.Get(ctx, depID)
				return s.printOutcome(ctx, depID, rec, err, false)
			}
			rec, err := op(s.api, ctx, depID)
			return s.printOutcome(ctx, depID, rec, err, wait)
		}),
	}
	id.register(cmd)
	if op != nil {
		cmd.Flags().BoolVar(&wait, "wait", false, "wait until the node has done it")
	}
	return cmd
}

func newDeploymentUpdateCommand(env Env, nf *nodeFlags) *cobra.Command {
	var (
		id   identityFlags
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "update ID FILE",
		Short: "Change a deployment to what a JSON file describes",
		Long: `Change deployment ID to the workloads of FILE (the same form as for deploy).
gridctl raises the version, marks the workloads that changed, signs and sends
it; the node adds, removes and changes only those workloads. Workload types
cannot change; disks and volumes can grow, not shrink. The new version has a
new hash: gridctl first updates the deployment's node contract on the registrar
(its hash, and the resources the new version needs), as the node requires.`,
		Example: `  gridctl deployment update 3 vm.json --wait`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("%q takes a deployment id and a file, got %d argument(s)", cmd.CommandPath(), len(args))
			}
			_, err := parseIDs("deployment id", args[:1])
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			depID, _ := strconv.ParseUint(strings.TrimSpace(args[0]), 10, 64)
			want, err := readDeploymentFile(env, args[1])
			if err != nil {
				return err
			}
			ctx, cancel, s, err := nf.open(cmd, env, &id)
			if err != nil {
				return err
			}
			defer cancel()
			cur, err := s.api.Get(ctx, depID)
			if err != nil {
				return s.explain(err)
			}
			next, err := gridtypes.PrepareUpdate(cur.Deployment, want)
			if err != nil {
				return err
			}
			if err := next.Validate(); err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			if err := s.updateContract(ctx, &next); err != nil {
				return err
			}
			if err := next.Sign(s.twin, s.key); err != nil {
				return err
			}
			rec, err := s.api.Update(ctx, next)
			return s.printOutcome(ctx, depID, rec, err, wait)
		},
	}
	id.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the node has applied it")
	return cmd
}

func newDeploymentChangesCommand(env Env, nf *nodeFlags) *cobra.Command {
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "changes ID",
		Short: "Show the history of a deployment's workloads",
		Example: `  gridctl deployment changes 3 --node 12 --mnemonic-file ~/.grid/mnemonic
  gridctl deployment changes 3 -o json`,
		Args: exactlyOneID("deployment id"),
		RunE: onDeployment(env, nf, &id, func(ctx context.Context, s *nodeSession, depID uint64) error {
			changes, err := s.api.Changes(ctx, depID)
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(changes)
			}
			rows := make([][]string, 0, len(changes))
			for _, c := range changes {
				rows = append(rows, []string{fmtTime(c.Time), strconv.FormatUint(uint64(c.Version), 10), c.Workload, string(c.Type), string(c.Op), s.styleState(c.State), dash(c.Message)})
			}
			return s.out.table([]string{"TIME", "VERSION", "WORKLOAD", "TYPE", "OP", "STATE", "MESSAGE"}, rows)
		}),
	}
	id.register(cmd)
	return cmd
}

// printOutcome prints rec, what the node answered to a request on
// deployment id, or explains err; with wait, it first waits until the node
// has done what was asked and prints the deployment then.
func (s *nodeSession) printOutcome(ctx context.Context, id uint64, rec gridtypes.Record, err error, wait bool) error {
	if err == nil && wait {
		rec, err = s.waitDone(ctx, id)
	}
	if err != nil {
		return s.explain(err)
	}
	return s.printRecord(rec)
}

// waitDone polls the deployment until no operation is pending.
func (s *nodeSession) waitDone(ctx context.Context, id uint64) (gridtypes.Record, error) {
	delay := 100 * time.Millisecond
	for {
		rec, err := s.api.Get(ctx, id)
		if err != nil || rec.Pending == "" {
			return rec, err
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("deployment %d still has a pending %s: %w", id, rec.Pending, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (s *nodeSession) styleState(st gridtypes.State) string {
	switch st {
	case gridtypes.StateOk:
		return s.out.style(styleGreen, string(st))
	case gridtypes.StateError:
		return s.out.style(styleRed, string(st))
	}
	return string(st)
}

// printRecord shows a deployment: its fields, then a workload table.
func (s *nodeSession) printRecord(r gridtypes.Record) error {
	if s.out.json {
		return s.out.JSON(r)
	}
	d := r.Deployment
	if err := s.out.fields([][2]string{
		{"deployment", strconv.FormatUint(d.ID, 10)},
		{"twin", strconv.FormatUint(d.TwinID, 10)},
		{"version", strconv.FormatUint(uint64(d.Version), 10)},
		{"contract", contractText(d.ContractID)},
		{"description", dash(d.Description)},
		{"pending", dash(r.Pending)},
		{"deleted", s.out.yesNo(r.Deleted)},
		{"created", fmtTime(r.Created)},
		{"updated", fmtTime(r.Updated)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(s.out.w)
	workloads := slices.Clone(d.Workloads)
	rows := make([][]string, 0, len(workloads))
	for _, w := range workloads {
		state, details := gridtypes.StateInit, ""
		if w.Result != nil {
			state, details = w.Result.State, w.Result.Message
			if details == "" {
				details = resultSummary(w.Result.Data)
			}
		}
		rows = append(rows, []string{w.Name, string(w.Type), strconv.FormatUint(uint64(w.Version), 10), s.styleState(state), dash(details)})
	}
	return s.out.table([]string{"WORKLOAD", "TYPE", "VERSION", "STATE", "DETAILS"}, rows)
}

// contractText is a contract id, or "-" for none.
func contractText(id uint64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatUint(id, 10)
}

// resultSummary is a workload's result data on one line: its plain fields
// as key=value, sorted by key (lists joined with commas; nested objects
// left to -o json).
func resultSummary(data json.RawMessage) string {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(fields), func(a, b string) int {
		// Addresses first: what a user looks for, kept when the line is
		// cut.
		return cmp.Or(cmp.Compare(addressRank(a), addressRank(b)), strings.Compare(a, b))
	})
	var parts []string
	for _, k := range keys {
		if v, ok := plainValue(fields[k]); ok && v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	line := strings.Join(parts, " ")
	if r := []rune(line); len(r) > maxSummary {
		line = string(r[:maxSummary-1]) + "…"
	}
	return line
}

// addressKeys are the result members that hold addresses, in the order a
// summary shows them, before any other.
var addressKeys = []string{"ip", "ips", "public_ip", "gateway"}

// addressRank is k's place in addressKeys, or after them all.
func addressRank(k string) int {
	if i := slices.Index(addressKeys, k); i >= 0 {
		return i
	}
	return len(addressKeys)
}

// maxSummary bounds a result's summary in a table: -o json has it whole.
const maxSummary = 100

// plainValue renders a JSON scalar, or a list of scalars, as text.
func plainValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	case []any:
		var items []string
		for _, e := range v {
			s, ok := plainValue(e)
			if !ok {
				return "", false
			}
			items = append(items, s)
		}
		return strings.Join(items, ","), true
	}
	return "", false
}
