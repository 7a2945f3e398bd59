package hub

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/envflag"
	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/keys"
)

// Config is every setting of the hub. ParseConfig fills it from flags and
// environment variables; DefaultConfig gives the defaults.
type Config struct {
	// Listen is the address the HTTP server listens on.
	Listen string
	// DataDir holds blocks, flist documents and repositories.
	DataDir string
	// Publishers may publish; each owns the repositories under its name.
	Publishers []Publisher
	// MaxFlistSize bounds an uploaded flist document, in bytes.
	MaxFlistSize int64
	// MaxMissingQuery bounds the block IDs of one "which blocks are
	// missing" question.
	MaxMissingQuery int
	// SignatureMaxValidity bounds expires - created of signed requests.
	SignatureMaxValidity time.Duration
	// ClockSkew is how far in the future a signature's created time may be.
	ClockSkew time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
}

// Publisher is a key allowed to publish, and the name its repositories
// live under.
type Publisher struct {
	// Name is the publisher's name (a flist.ValidName), the first part of
	// its repositories' names: <publisher>/<repo>.
	Name string
	// ID is the keyid its signed requests carry (PublisherID(Name)).
	ID uint64
	// PublicKey is the 32-byte ed25519 or sr25519 public key.
	PublicKey []byte
}

// PublisherID returns the keyid of the publisher called name in signed
// requests: signed requests v2 (docs/auth.md) name the signer by a decimal
// id, and the hub derives it from the name so it never changes when the
// publisher table does. It is the first 48 bits of
// SHA-256("grid4 hub publisher\n" + name), and never 0. Clients do not need
// to compute it: GET /api/v1/publishers lists it.
func PublisherID(name string) uint64 {
	sum := sha256.Sum256([]byte("grid4 hub publisher\n" + name))
	id := binary.BigEndian.Uint64(sum[:8]) >> 16
	return max(id, 1)
}

// ParsePublisher parses NAME=KEY, the key in hex (0x optional), base64 or
// SS58.
func ParsePublisher(s string) (Publisher, error) {
	name, key, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Publisher{}, fmt.Errorf("publisher %q: want NAME=PUBLIC_KEY", s)
	}
	name = strings.TrimSpace(name)
	if err := flist.ValidName(name); err != nil {
		return Publisher{}, fmt.Errorf("publisher %q: %w", name, err)
	}
	pub, err := keys.ParsePublicKey(key)
	if err != nil {
		return Publisher{}, fmt.Errorf("publisher %q: %w", name, err)
	}
	return Publisher{Name: name, ID: PublisherID(name), PublicKey: pub}, nil
}

// DefaultConfig returns the settings used when nothing is given.
func DefaultConfig() Config {
	return Config{
		Listen:               ":8090",
		DataDir:              "hub-data",
		MaxFlistSize:         32 << 20,
		MaxMissingQuery:      10_000,
		SignatureMaxValidity: 5 * time.Minute,
		ClockSkew:            5 * time.Second,
		ShutdownTimeout:      15 * time.Second,
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
	}
}

// EnvPrefix prefixes the environment variable of every flag: --data-dir is
// HUB_DATA_DIR.
const EnvPrefix = "HUB_"

// EnvName returns the environment variable read for flag name.
func EnvName(flagName string) string { return envflag.Name(EnvPrefix, flagName) }

// program is how the hub reads its flags and variables and writes --help.
var program = envflag.Program{
	Prefix:  EnvPrefix,
	Usage:   "Usage: hub [flags]\n\nThe grid4 hub: flists, their blocks, tags (releases) and tag links over HTTP.\n",
	Example: "data-dir",
}

// ErrHelp is returned by ParseConfig when -h or --help was given; the
// usage has been written to the output.
var ErrHelp = flag.ErrHelp

// ParseConfig reads the settings from args (without the program name) and
// from environment variables HUB_<FLAG> looked up with getenv; a flag given
// on the command line wins over its variable. Usage and help go to out.
func ParseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (host:port)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of blocks, flists and repositories (created if missing)")
	fs.Var((*publisherList)(&c.Publishers), "publisher", "NAME=PUBLIC_KEY (hex, base64 or SS58) allowed to publish under NAME; repeat the flag, or separate with commas in the variable")
	fs.Int64Var(&c.MaxFlistSize, "max-flist-size", c.MaxFlistSize, "largest flist document accepted, in bytes")
	fs.IntVar(&c.MaxMissingQuery, "max-missing-query", c.MaxMissingQuery, "most block ids in one POST /api/v1/blocks/missing")
	fs.Var((*flagvalue.Duration)(&c.SignatureMaxValidity), "signature-max-validity", "longest validity (expires - created) of a signed request")
	fs.Var((*flagvalue.Duration)(&c.ClockSkew), "clock-skew", "how far in the future a signed request's created time may be")
	fs.Var((*flagvalue.Duration)(&c.ShutdownTimeout), "shutdown-timeout", "how long to wait for requests in flight on SIGINT/SIGTERM")
	logflag.Flags(fs, &c.LogLevel, &c.LogFormat)

	if err := program.Parse(fs, args, getenv, out); err != nil {
		if errors.Is(err, envflag.ErrArgument) {
			return c, fmt.Errorf("%w (settings are flags: --listen, --data-dir, ...)", err)
		}
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings for consistency.
func (c Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("--listen must not be empty")
	case c.DataDir == "":
		return errors.New("--data-dir must not be empty")
	case c.MaxFlistSize < 1024 || c.MaxFlistSize > flist.MaxDocumentSize:
		return fmt.Errorf("--max-flist-size must be between 1024 and %d", flist.MaxDocumentSize)
	case c.MaxMissingQuery < 1:
		return errors.New("--max-missing-query must be at least 1")
	case c.SignatureMaxValidity <= 0 || c.ClockSkew < 0:
		return errors.New("--signature-max-validity must be positive and --clock-skew not negative")
	case c.ShutdownTimeout <= 0:
		return errors.New("--shutdown-timeout must be positive")
	}
	if err := logflag.CheckFormat(c.LogFormat); err != nil {
		return err
	}
	names := map[string]bool{}
	ids := map[uint64]string{}
	for _, p := range c.Publishers {
		if err := flist.ValidName(p.Name); err != nil {
			return fmt.Errorf("--publisher: %w", err)
		}
		if names[p.Name] {
			return fmt.Errorf("--publisher %s given twice", p.Name)
		}
		names[p.Name] = true
		if len(p.PublicKey) != keys.PublicKeySize {
			return fmt.Errorf("--publisher %s: key is %d bytes, want %d", p.Name, len(p.PublicKey), keys.PublicKeySize)
		}
		if p.ID != PublisherID(p.Name) {
			return fmt.Errorf("--publisher %s: id %d is not PublisherID(%q)", p.Name, p.ID, p.Name)
		}
		if other, ok := ids[p.ID]; ok {
			return fmt.Errorf("--publisher %s and %s have the same id %d; rename one", other, p.Name, p.ID)
		}
		ids[p.ID] = p.Name
	}
	return nil
}

// publisherList is a flag.Value collecting NAME=KEY publishers. The flag
// may repeat; one value may hold several, comma separated (the form an
// environment variable can carry).
type publisherList []Publisher

func (l *publisherList) String() string {
	names := make([]string, len(*l))
	for i, p := range *l {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

func (l *publisherList) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := ParsePublisher(part)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(*l, func(q Publisher) bool { return q.Name == p.Name }) {
			return fmt.Errorf("publisher %s given twice", p.Name)
		}
		*l = append(*l, p)
	}
	return nil
}
