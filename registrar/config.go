package registrar

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/internal/envflag"
	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/internal/logflag"
)

// Config is every setting of the registrar. ParseConfig fills it from
// flags and environment variables; DefaultConfig gives the defaults.
type Config struct {
	// Listen is the address the HTTP server listens on.
	Listen string
	// DB is the store URL: "sqlite:PATH" or "postgres://...".
	DB string
	// AdminTwins may set the ZOS version. Empty: nobody may.
	AdminTwins []uint64

	// LegacyAuth accepts the public registrar's X-Auth header besides
	// signed requests v2.
	LegacyAuth bool
	// LegacyWindow bounds |now - X-Auth timestamp|.
	LegacyWindow time.Duration
	// LegacyReplayGuard refuses an X-Auth request seen before within the
	// legacy window (same twin, second, method, path and body).
	LegacyReplayGuard bool
	// AdminLegacyAuth accepts X-Auth on the admin routes (setting the ZOS
	// version), each challenge once. Off, admins must use signed requests
	// v2, which bind the body: the setting for production.
	AdminLegacyAuth bool
	// SignatureMaxValidity bounds expires - created of v2 signatures.
	SignatureMaxValidity time.Duration
	// ClockSkew is how far in the future a v2 created time may be.
	ClockSkew time.Duration
	// AccountWindow bounds |now - timestamp| of the account creation
	// signature.
	AccountWindow time.Duration
	// UptimeWindow bounds |now - timestamp| of an uptime report.
	UptimeWindow time.Duration
	// KeyCacheTTL is how long a twin's public key is cached.
	KeyCacheTTL time.Duration

	// ReportInterval is the base uptime report interval.
	ReportInterval time.Duration
	// OnlineMultiple times the effective interval is the online cutoff.
	OnlineMultiple float64
	// ReportRate is the target fleet-wide uptime reports per second; the
	// interval is stretched to nodes/ReportRate when that is longer. 0
	// never stretches.
	ReportRate float64
	// UptimeRetention is how long closed uptime sessions are kept.
	UptimeRetention time.Duration
	// PruneInterval is how often old uptime sessions and expired nonces
	// are deleted.
	PruneInterval time.Duration

	// RateIP and RateIPBurst limit requests per client IP (per /64 for
	// IPv6); 0 disables.
	RateIP      float64
	RateIPBurst int
	// RateTwin and RateTwinBurst limit authenticated requests per twin; 0
	// disables.
	RateTwin      float64
	RateTwinBurst int
	// RateLimitKeys bounds the number of clients each limiter tracks.
	RateLimitKeys int
	// TrustedProxies are the peers whose X-Forwarded-For is believed for
	// the client IP.
	TrustedProxies []netip.Prefix

	// CORSOrigin is sent as Access-Control-Allow-Origin so browser apps
	// (the public TypeScript client, dashboards) can call the API; empty
	// sends no CORS headers.
	CORSOrigin string

	// PricingNotice is how long after a farm's price change existing
	// contracts keep their price (new contracts pay the new one at once).
	PricingNotice time.Duration
	// GracePeriod is how long a contract stays in grace (its twin's
	// balance below zero) before it is deleted.
	GracePeriod time.Duration
	// BillingDelay is how long after an hour ends it is billed, so that
	// nodes' usage reports for it arrive first.
	BillingDelay time.Duration
	// UsageWait is how long a node contract's hour waits for its node's
	// usage report before it is billed as nothing used (a node cut off
	// from the registrar reports its hours when it is back).
	UsageWait time.Duration
	// BillingCheck is how often the billing loop looks whether a period
	// became due.
	BillingCheck time.Duration
	// UsageRetention is how long nodes' usage reports are kept (pruned
	// every prune interval); billing reads them within the billing delay.
	UsageRetention time.Duration

	// MaxBody is the largest request body accepted, in bytes.
	MaxBody int64
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// LogLevel and LogFormat ("text" or "json") configure the logger.
	LogLevel  slog.Level
	LogFormat string
}

// DefaultConfig returns the settings used when nothing is given.
func DefaultConfig() Config {
	return Config{
		Listen:               ":8080",
		DB:                   "sqlite:registrar.db",
		LegacyAuth:           true,
		LegacyWindow:         60 * time.Second,
		LegacyReplayGuard:    true,
		SignatureMaxValidity: 5 * time.Minute,
		ClockSkew:            5 * time.Second,
		AccountWindow:        30 * time.Second,
		UptimeWindow:         60 * time.Second,
		KeyCacheTTL:          30 * time.Second,
		ReportInterval:       40 * time.Minute,
		OnlineMultiple:       3,
		ReportRate:           250,
		UptimeRetention:      90 * 24 * time.Hour,
		PruneInterval:        time.Hour,
		RateIP:               50,
		RateIPBurst:          100,
		RateTwin:             5,
		RateTwinBurst:        20,
		RateLimitKeys:        100_000,
		CORSOrigin:           "*",
		PricingNotice:        7 * 24 * time.Hour,
		GracePeriod:          14 * 24 * time.Hour,
		BillingDelay:         10 * time.Minute,
		BillingCheck:         time.Minute,
		UsageRetention:       7 * 24 * time.Hour,
		UsageWait:            24 * time.Hour,
		MaxBody:              64 << 10,
		ShutdownTimeout:      15 * time.Second,
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
	}
}

// EnvPrefix prefixes the environment variable of every flag:
// --admin-twin is REGISTRAR_ADMIN_TWIN.
const EnvPrefix = "REGISTRAR_"

// EnvName returns the environment variable read for flag name.
func EnvName(flagName string) string { return envflag.Name(EnvPrefix, flagName) }

// program is how the registrar reads its flags and variables and writes
// --help.
var program = envflag.Program{
	Prefix:  EnvPrefix,
	Usage:   "Usage: registrar [flags]\n\nThe grid4 registrar: accounts, farms, nodes, uptime and ZOS version over HTTP.\n",
	Example: "admin-twin",
}

// ErrHelp is returned by ParseConfig when -h or --help was given; the
// usage has been written to the output.
var ErrHelp = flag.ErrHelp

// ParseConfig reads the settings from args (without the program name) and
// from environment variables REGISTRAR_<FLAG> looked up with getenv; a flag
// given on the command line wins over its variable. Usage and help go to
// out. Errors are one line, naming the flag or variable.
func ParseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("registrar", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (host:port)")
	fs.StringVar(&c.DB, "db", c.DB, `store URL: "sqlite:PATH" or "postgres://user:pass@host/db"`)
	fs.Var((*twinList)(&c.AdminTwins), "admin-twin", "twin id(s) allowed to set the ZOS version, comma separated (default none: setting the version is refused)")
	fs.BoolVar(&c.LegacyAuth, "legacy-auth", c.LegacyAuth, "accept the legacy X-Auth header besides signed requests v2")
	fs.Var((*flagvalue.Duration)(&c.LegacyWindow), "legacy-window", "how far an X-Auth timestamp may be from now, either way")
	fs.BoolVar(&c.LegacyReplayGuard, "legacy-replay-guard", c.LegacyReplayGuard, "refuse an X-Auth request (same twin, second, method, path and body) already accepted within the legacy window")
	fs.BoolVar(&c.AdminLegacyAuth, "admin-legacy-auth", c.AdminLegacyAuth, "accept X-Auth on the admin routes (setting the ZOS version), each header once; off (the default), admins sign with v2")
	fs.Var((*flagvalue.Duration)(&c.SignatureMaxValidity), "signature-max-validity", "longest validity (expires - created) of a v2 signature")
	fs.Var((*flagvalue.Duration)(&c.ClockSkew), "clock-skew", "how far in the future a v2 created time may be")
	fs.Var((*flagvalue.Duration)(&c.AccountWindow), "account-window", "how far the account creation timestamp may be from now, either way")
	fs.Var((*flagvalue.Duration)(&c.UptimeWindow), "uptime-window", "how far an uptime report timestamp may be from now, either way")
	fs.Var((*flagvalue.Duration)(&c.KeyCacheTTL), "key-cache-ttl", "how long twin public keys are cached (0 disables the cache)")
	fs.Var((*flagvalue.Duration)(&c.ReportInterval), "report-interval", "base uptime report interval")
	fs.Float64Var(&c.OnlineMultiple, "online-multiple", c.OnlineMultiple, "a node is online while its last report is younger than this many report intervals (>= 1.5)")
	fs.Float64Var(&c.ReportRate, "report-rate", c.ReportRate, "target uptime reports per second over the fleet; the interval stretches to nodes/rate (0: never)")
	fs.Var((*flagvalue.Duration)(&c.UptimeRetention), "uptime-retention", "how long uptime history is kept (e.g. 90d)")
	fs.Var((*flagvalue.Duration)(&c.PruneInterval), "prune-interval", "how often old uptime history and expired nonces are deleted")
	fs.Float64Var(&c.RateIP, "rate-ip", c.RateIP, "requests per second allowed per client IP (IPv6: per /64); 0 disables")
	fs.IntVar(&c.RateIPBurst, "rate-ip-burst", c.RateIPBurst, "burst allowed per client IP")
	fs.Float64Var(&c.RateTwin, "rate-twin", c.RateTwin, "authenticated requests per second allowed per twin; 0 disables")
	fs.IntVar(&c.RateTwinBurst, "rate-twin-burst", c.RateTwinBurst, "burst allowed per twin")
	fs.IntVar(&c.RateLimitKeys, "rate-limit-keys", c.RateLimitKeys, "most clients each rate limiter remembers (least recently seen are forgotten)")
	fs.Var((*prefixList)(&c.TrustedProxies), "trusted-proxies", "CIDRs of reverse proxies whose X-Forwarded-For gives the client IP, comma separated")
	fs.StringVar(&c.CORSOrigin, "cors-origin", c.CORSOrigin, `Access-Control-Allow-Origin for browser clients: "*", one origin, or "none"`)
	fs.Var((*flagvalue.Duration)(&c.PricingNotice), "pricing-notice", "how long existing contracts keep their price after a farm changes its prices (e.g. 7d)")
	fs.Var((*flagvalue.Duration)(&c.GracePeriod), "grace-period", "how long a contract stays in grace (balance below zero) before it is deleted (e.g. 14d)")
	fs.Var((*flagvalue.Duration)(&c.BillingDelay), "billing-delay", "how long after an hour ends it is billed (nodes report its usage first)")
	fs.Var((*flagvalue.Duration)(&c.BillingCheck), "billing-check", "how often the billing loop looks for a period that became due")
	fs.Var((*flagvalue.Duration)(&c.UsageWait), "usage-wait", "how long a node contract's hour waits for its node's usage report before it is billed as nothing used (e.g. 1d; 0: billed when due)")
	fs.Var((*flagvalue.Duration)(&c.UsageRetention), "usage-retention", "how long nodes' usage reports are kept after their hour (at least 2h; e.g. 7d)")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "largest request body in bytes")
	fs.Var((*flagvalue.Duration)(&c.ShutdownTimeout), "shutdown-timeout", "how long to wait for requests in flight on SIGINT/SIGTERM")
	logflag.Flags(fs, &c.LogLevel, &c.LogFormat)

	if err := program.Parse(fs, args, getenv, out); err != nil {
		if errors.Is(err, envflag.ErrArgument) {
			return c, fmt.Errorf("%w (settings are flags: --listen, --db, ...)", err)
		}
		return c, err
	}
	if c.CORSOrigin == "none" {
		c.CORSOrigin = ""
	}
	return c, c.Validate()
}

// Validate checks the settings for consistency.
func (c Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("--listen must not be empty")
	case !validListen(c.Listen):
		return fmt.Errorf("--listen %q: want host:port or :port (\":8080\", \"127.0.0.1:8080\")", c.Listen)
	case !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://"):
		return fmt.Errorf("--db %q: want sqlite:PATH or postgres://user:password@host/database", redactURL(c.DB))
	case c.LegacyWindow <= 0 || c.AccountWindow <= 0 || c.UptimeWindow <= 0:
		return errors.New("--legacy-window, --account-window and --uptime-window must be positive")
	case c.SignatureMaxValidity <= 0 || c.ClockSkew < 0:
		return errors.New("--signature-max-validity must be positive and --clock-skew not negative")
	case c.KeyCacheTTL < 0:
		return errors.New("--key-cache-ttl must not be negative")
	case c.ReportInterval < time.Second:
		return errors.New("--report-interval must be at least 1s")
	case c.OnlineMultiple < 1.5:
		return fmt.Errorf("--online-multiple %g is too small: use at least 1.5 (a node reports up to 1.3 intervals apart)", c.OnlineMultiple)
	case c.ReportRate < 0:
		return errors.New("--report-rate must not be negative")
	case c.UptimeRetention <= 0 || c.PruneInterval <= 0:
		return errors.New("--uptime-retention and --prune-interval must be positive")
	case c.RateIP < 0 || c.RateTwin < 0:
		return errors.New("--rate-ip and --rate-twin must not be negative")
	case c.RateIPBurst < 1 || c.RateTwinBurst < 1:
		return errors.New("--rate-ip-burst and --rate-twin-burst must be at least 1")
	case c.RateLimitKeys < limiterShards:
		return fmt.Errorf("--rate-limit-keys must be at least %d", limiterShards)
	case c.PricingNotice < 0 || c.GracePeriod <= 0:
		return errors.New("--pricing-notice must not be negative and --grace-period must be positive")
	case c.BillingDelay < 0 || c.BillingDelay >= time.Hour:
		return errors.New("--billing-delay must be at least 0 and less than 1h")
	case c.BillingCheck <= 0:
		return errors.New("--billing-check must be positive")
	case c.UsageRetention < 2*time.Hour:
		return errors.New("--usage-retention must be at least 2h (an hour's reports are billed after it ends)")
	case c.UsageWait < 0 || c.UsageWait > c.UsageRetention-2*time.Hour:
		return errors.New("--usage-wait must be at least 0 and at most --usage-retention less 2h (a late report is billed within the hour after it came, before it is pruned)")
	case c.MaxBody < 1024:
		return errors.New("--max-body must be at least 1024 bytes")
	case c.ShutdownTimeout <= 0:
		return errors.New("--shutdown-timeout must be positive")
	}
	return logflag.CheckFormat(c.LogFormat)
}

// validListen reports whether addr is a TCP address to listen on
// (host:port, the port a number or a service name), so that a mistyped one
// is refused with the other bad settings instead of after the store is
// opened (and a SQLite file created).
func validListen(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = net.LookupPort("tcp", port)
	return err == nil
}

// isAdmin reports whether twin may set the ZOS version.
func (c Config) isAdmin(twin uint64) bool { return slices.Contains(c.AdminTwins, twin) }

// twinList is a flag.Value of comma-separated twin ids.
type twinList []uint64

func (l *twinList) String() string {
	parts := make([]string, len(*l))
	for i, id := range *l {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ",")
}

func (l *twinList) Set(s string) error {
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		id, err := strconv.ParseUint(p, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%q is not a twin id", p)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	*l = out
	return nil
}

// prefixList is a flag.Value of comma-separated CIDRs (a bare address is a
// single-host prefix).
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(s string) error {
	var out []netip.Prefix
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return fmt.Errorf("%q is not an IP address or CIDR", p)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR", p)
		}
		out = append(out, pre.Masked())
	}
	*l = out
	return nil
}

// redactURL hides a password in a database URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
