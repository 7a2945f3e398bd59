package gridctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

func newAccountCommand(env Env) *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Create, show and update your account (twin); its balance and statement",
		Long: `Create, show and update your account (twin) on the registrar.

An account ties a public key to a twin id; farms and nodes belong to twins.
The identity is read from --mnemonic-file PATH, --seed-file PATH or the
` + MnemonicEnv + ` environment variable; the registrar from --registrar URL or
` + RegistrarEnv + `.`,
		Example: `  export ` + RegistrarEnv + `=https://registrar.example.org
  gridctl account create --mnemonic-file ~/.grid/mnemonic
  gridctl account show --mnemonic-file ~/.grid/mnemonic
  gridctl account show --twin 7 -o json`,
		Args: noArgs,
		RunE: showHelp,
	}
	remote.register(cmd)
	cmd.AddCommand(newAccountCreateCommand(env, &remote), newAccountShowCommand(env, &remote), newAccountUpdateCommand(env, &remote),
		newAccountBalanceCommand(env, &remote), newAccountStatementCommand(env, &remote), newAccountCreditCommand(env, &remote))
	return cmd
}

// accountFields are the changeable fields of an account.
type accountFields struct {
	relays    []string
	rmbEncKey string
}

func (f *accountFields) register(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.relays, "relay", nil, "RMB relay `HOST` of the twin (repeat or comma-separate for several)")
	cmd.Flags().StringVar(&f.rmbEncKey, "rmb-enc-key", "", "RMB encryption public `KEY` of the twin")
}

func newAccountCreateCommand(env Env, remote *remoteFlags) *cobra.Command {
	return newAccountChangeCommand(env, remote, &cobra.Command{
		Use:   "create",
		Short: "Create the account of your identity",
		Long: `Create the account (twin) of your identity on the registrar and print it.
The request is signed by the key itself; the registrar assigns the twin id.
An identity has one account: creating it twice fails with 409.`,
		Example: `  gridctl account create --mnemonic-file ~/.grid/mnemonic
  GRID_MNEMONIC="$(cat ~/.grid/mnemonic)" gridctl account create --relay relay.example.org -o json`,
	}, func(ctx context.Context, s *session, f accountFields) (api.Account, error) {
		return s.client.CreateAccount(ctx, client.AccountOptions{Relays: f.relays, RMBEncKey: f.rmbEncKey})
	})
}

func newAccountShowCommand(env Env, remote *remoteFlags) *cobra.Command {
	var (
		id        identityFlags
		twin      uint64
		publicKey string
	)
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an account: yours, or another by --twin or --public-key",
		Long: `Show an account. Without --twin or --public-key it shows the account of your
identity (which must then be given).`,
		Example: `  gridctl account show --mnemonic-file ~/.grid/mnemonic
  gridctl account show --twin 7
  gridctl account show --public-key 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if twin != 0 && publicKey != "" {
				return errors.New("give --twin or --public-key, not both")
			}
			ctx, cancel, s, err := remote.open(cmd, env, id.when(twin == 0 && publicKey == ""))
			if err != nil {
				return err
			}
			defer cancel()
			var acc api.Account
			switch {
			case twin != 0:
				acc, err = s.client.AccountByTwin(ctx, twin)
			case publicKey != "":
				pub, perr := keys.ParsePublicKey(publicKey)
				if perr != nil {
					return fmt.Errorf("--public-key: %w", perr)
				}
				acc, err = s.client.AccountByPublicKey(ctx, pub)
			default:
				acc, err = s.client.AccountByPublicKey(ctx, s.client.KeyPair().Public().Key)
				if errors.Is(err, client.ErrNotFound) {
					err = client.ErrNoAccount
				}
			}
			if err != nil {
				return s.explain(err)
			}
			return s.printAccount(acc)
		},
	}
	id.register(cmd)
	cmd.Flags().Uint64Var(&twin, "twin", 0, "show the account of this twin `ID`")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "show the account of this public `KEY` (hex, base64 or SS58)")
	return cmd
}

func newAccountUpdateCommand(env Env, remote *remoteFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change the relays or RMB encryption key of your account",
		Long: `Change the relays or the RMB encryption key of your account, then print it.
Fields not given are left as they are.`,
		Example: `  gridctl account update --mnemonic-file ~/.grid/mnemonic --relay relay1.example.org,relay2.example.org
  gridctl account update --rmb-enc-key 0x02ab… -o json`,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("relay") && !cmd.Flags().Changed("rmb-enc-key") {
				return errors.New("nothing to change: give --relay or --rmb-enc-key")
			}
			return nil
		},
	}
	return newAccountChangeCommand(env, remote, cmd, func(ctx context.Context, s *session, f accountFields) (api.Account, error) {
		if err := s.client.UpdateAccount(ctx, api.UpdateAccountRequest{Relays: f.relays, RMBEncKey: f.rmbEncKey}); err != nil {
			return api.Account{}, err
		}
		twin, err := s.client.TwinID(ctx)
		if err != nil {
			return api.Account{}, err
		}
		return s.client.AccountByTwin(ctx, twin)
	})
}

// newAccountChangeCommand completes cmd (create, update) into a command
// that signs with the caller's identity, applies change with the account
// fields given and prints the account it returns.
func newAccountChangeCommand(env Env, remote *remoteFlags, cmd *cobra.Command, change func(ctx context.Context, s *session, f accountFields) (api.Account, error)) *cobra.Command {
	var (
		id     identityFlags
		fields accountFields
	)
	cmd.Args = noArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel, s, err := remote.open(cmd, env, &id)
		if err != nil {
			return err
		}
		defer cancel()
		acc, err := change(ctx, s, fields)
		if err != nil {
			return s.explain(err)
		}
		return s.printAccount(acc)
	}
	id.register(cmd)
	fields.register(cmd)
	return cmd
}

// printAccount prints one account.
func (s *session) printAccount(acc api.Account) error {
	if s.out.json {
		return s.out.JSON(acc)
	}
	relays := strings.Join(acc.Relays, ", ")
	return s.out.fields([][2]string{
		{"twin id", strconv.FormatUint(acc.TwinID, 10)},
		{"public key", acc.PublicKey},
		{"relays", dash(relays)},
		{"rmb enc key", dash(acc.RMBEncKey)},
		{"created", fmtTime(acc.CreatedAt)},
		{"updated", fmtTime(acc.UpdatedAt)},
	})
}
