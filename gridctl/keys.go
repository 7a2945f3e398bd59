package gridctl

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/keys"
)

// errInvalidSignature is the verify outcome for a well-formed signature that
// does not verify.
var errInvalidSignature = errors.New("invalid signature")

func newKeysCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create identities, show public keys, sign and verify",
		Long: `Create identities, show public keys, sign and verify.

Commands that act as an identity read it from --mnemonic-file PATH (a mnemonic,
a secret URI such as "<mnemonic>//farm///password", or a 0x hex seed),
--seed-file PATH (a node seed file), or the ` + MnemonicEnv + ` environment variable;
never from a flag value.`,
		Args: noArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newKeysNewCommand(env), newKeysShowCommand(env), newKeysSignCommand(env), newKeysVerifyCommand(env))
	return cmd
}

// publicKeyView is how a public key is printed, in text and JSON.
type publicKeyView struct {
	Mnemonic     string `json:"mnemonic,omitempty"`
	Scheme       string `json:"scheme"`
	Path         string `json:"path,omitempty"`
	PublicKey    string `json:"public_key"`
	PublicKeyB64 string `json:"public_key_base64"`
	SS58         string `json:"ss58"`
	SS58Prefix   uint16 `json:"ss58_prefix"`
}

func newPublicKeyView(kp keys.KeyPair, prefix uint16) publicKeyView {
	pub := kp.Public().Key
	return publicKeyView{
		Scheme:       string(kp.Scheme()),
		PublicKey:    "0x" + hex.EncodeToString(pub),
		PublicKeyB64: base64.StdEncoding.EncodeToString(pub),
		SS58:         keys.SS58Encode(pub, prefix),
		SS58Prefix:   prefix,
	}
}

func (v publicKeyView) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var b strings.Builder
	if v.Mnemonic != "" {
		fmt.Fprintf(&b, "mnemonic:    %s\n", v.Mnemonic)
	}
	fmt.Fprintf(&b, "scheme:      %s\n", v.Scheme)
	if v.Path != "" {
		fmt.Fprintf(&b, "path:        %s\n", v.Path)
	}
	fmt.Fprintf(&b, "public key:  %s\n", v.PublicKey)
	fmt.Fprintf(&b, "base64:      %s\n", v.PublicKeyB64)
	fmt.Fprintf(&b, "ss58:        %s (prefix %d)\n", v.SS58, v.SS58Prefix)
	_, err := io.WriteString(w, b.String())
	return err
}

// outputFlags are the presentation flags of commands that print a key.
type outputFlags struct {
	format string
	prefix uint16
}

func (f *outputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.format, "output", "o", "text", "output format: text or json")
	cmd.Flags().Uint16Var(&f.prefix, "ss58-prefix", keys.GenericSS58Prefix, "SS58 network prefix of the printed address (0-16383)")
}

func (f *outputFlags) check() error {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--output %q: want text or json", f.format)
	}
	if f.prefix > keys.MaxSS58Prefix {
		return fmt.Errorf("--ss58-prefix %d: want 0 to %d", f.prefix, keys.MaxSS58Prefix)
	}
	return nil
}

func newKeysNewCommand(env Env) *cobra.Command {
	var (
		out      outputFlags
		scheme   string
		path     string
		words    int
		saveSeed string
	)
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Make a new identity and print its mnemonic and public key",
		Long: `Make a new identity: print a new BIP-39 mnemonic and the public key it gives
(with --path applied). The mnemonic is the only backup of the identity: store it
safely and never share it.

With --save-seed PATH the derived key is also written as a node seed file
(mode 0600; an existing file is never replaced).`,
		Example: `  umask 077; gridctl keys new > ~/.grid/farmer.txt
  gridctl keys new --scheme ed25519 --save-seed publisher.seed > publisher-backup.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			s, err := keys.ParseScheme(scheme)
			if err != nil {
				return err
			}
			mnemonic, err := keys.NewMnemonicWords(words)
			if err != nil {
				return err
			}
			kp, err := keys.FromMnemonic(s, mnemonic, "", path)
			if err != nil {
				return fmt.Errorf("--path: %w", err)
			}
			if saveSeed != "" {
				if err := keys.WriteSeedFile(saveSeed, kp); err != nil {
					return err
				}
			}
			v := newPublicKeyView(kp, out.prefix)
			v.Mnemonic, v.Path = mnemonic, path
			return v.write(env.Stdout, out.format)
		},
	}
	out.register(cmd)
	cmd.Flags().StringVar(&scheme, "scheme", string(defaultScheme), "signature scheme: ed25519 or sr25519")
	cmd.Flags().StringVar(&path, "path", "", "derivation path for the printed key, e.g. //farm//1")
	cmd.Flags().IntVar(&words, "words", keys.DefaultMnemonicWords, "mnemonic length: 12, 15, 18, 21 or 24 words")
	cmd.Flags().StringVar(&saveSeed, "save-seed", "", "also write the key as a node seed file at `PATH`")
	return cmd
}

func newKeysShowCommand(env Env) *cobra.Command {
	var (
		id  identityFlags
		out outputFlags
	)
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the public key of an identity (hex, base64, SS58)",
		Example: `  gridctl keys show --mnemonic-file ~/.grid/mnemonic
  gridctl keys show --seed-file publisher.seed -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			kp, err := id.load(cmd, env)
			if err != nil {
				return err
			}
			v := newPublicKeyView(kp, out.prefix)
			v.Path = id.path
			return v.write(env.Stdout, out.format)
		},
	}
	id.register(cmd)
	out.register(cmd)
	return cmd
}

// messageFlags choose where the signed message comes from.
type messageFlags struct {
	message string
	file    string
}

func (f *messageFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.message, "message", "", "the message, as given (no newline added)")
	cmd.Flags().StringVar(&f.file, "file", "", "read the message from `FILE` (- for standard input)")
	cmd.MarkFlagsMutuallyExclusive("message", "file")
}

// read returns the message: --message, --file, or standard input.
func (f *messageFlags) read(cmd *cobra.Command, env Env) ([]byte, error) {
	switch {
	case cmd.Flags().Changed("message"):
		return []byte(f.message), nil
	case f.file != "" && f.file != "-":
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("reading message: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(env.Stdin)
	if err != nil {
		return nil, fmt.Errorf("reading message from standard input: %w", err)
	}
	return b, nil
}

func newKeysSignCommand(env Env) *cobra.Command {
	var (
		id       identityFlags
		msg      messageFlags
		encoding string
	)
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign a message (--message, --file or standard input)",
		Long: `Sign a message given with --message, --file or on standard input, and print
the 64-byte signature. sr25519 signatures are randomized: signing twice gives
two different signatures, both valid.`,
		Example: `  gridctl keys sign --message hello --mnemonic-file ~/.grid/mnemonic
  gridctl keys sign --file tag.json --encoding base64 --seed-file publisher.seed`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if encoding != "hex" && encoding != "base64" {
				return fmt.Errorf("--encoding %q: want hex or base64", encoding)
			}
			kp, err := id.load(cmd, env)
			if err != nil {
				return err
			}
			m, err := msg.read(cmd, env)
			if err != nil {
				return err
			}
			sig, err := kp.Sign(m)
			if err != nil {
				return err
			}
			text := hex.EncodeToString(sig)
			if encoding == "base64" {
				text = base64.StdEncoding.EncodeToString(sig)
			}
			_, err = fmt.Fprintln(env.Stdout, text)
			return err
		},
	}
	id.register(cmd)
	msg.register(cmd)
	cmd.Flags().StringVar(&encoding, "encoding", "hex", "signature encoding: hex or base64")
	return cmd
}

func newKeysVerifyCommand(env Env) *cobra.Command {
	var (
		msg       messageFlags
		publicKey string
		signature string
		scheme    string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a signature; exit 0 and print \"valid\", or exit 1 with the reason",
		Long: `Check that --signature (hex or base64) is a valid signature of the message
(--message, --file or standard input) by --public-key (hex, base64 or SS58).
Prints "valid" and exits 0, or exits 1 with a one-line reason. Without
--scheme both ed25519 and sr25519 are tried, as the registrar does.`,
		Example: `  gridctl keys verify --message hello --public-key 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY --signature 0x...
  gridctl keys verify --file tag.json --scheme ed25519 --public-key 0x88dc... --signature HeCb...==`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if publicKey == "" || signature == "" {
				return errors.New("--public-key and --signature are required")
			}
			pub, err := keys.ParsePublicKey(publicKey)
			if err != nil {
				return fmt.Errorf("--public-key: %w", err)
			}
			sig, err := keys.ParseSignature(signature)
			if err != nil {
				return fmt.Errorf("--signature: %w", err)
			}
			m, err := msg.read(cmd, env)
			if err != nil {
				return err
			}
			var ok bool
			if scheme == "" {
				_, ok = keys.VerifyAny(pub, m, sig)
			} else {
				s, err := keys.ParseScheme(scheme)
				if err != nil {
					return err
				}
				ok = keys.PublicKey{Scheme: s, Key: pub}.Verify(m, sig)
			}
			if !ok {
				what := "ed25519 or sr25519"
				if scheme != "" {
					what = scheme
				}
				return fmt.Errorf("%w: not a valid %s signature of this message by this public key", errInvalidSignature, what)
			}
			_, err = fmt.Fprintln(env.Stdout, "valid")
			return err
		},
	}
	msg.register(cmd)
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the signer's public key: hex, base64 or SS58 address")
	cmd.Flags().StringVar(&signature, "signature", "", "the signature: hex (0x optional) or base64")
	cmd.Flags().StringVar(&scheme, "scheme", "", "ed25519 or sr25519 (default: try both)")
	return cmd
}
