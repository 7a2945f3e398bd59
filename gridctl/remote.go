package gridctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/client"
)

// RegistrarEnv is the environment variable naming the registrar when
// --registrar is not given.
const RegistrarEnv = "GRID_REGISTRAR"

// NoColorEnv disables colour when set to anything (https://no-color.org).
const NoColorEnv = "NO_COLOR"

// defaultTimeout bounds a whole command, retries included.
const defaultTimeout = 30 * time.Second

// errNoRegistrar is returned when neither --registrar nor GRID_REGISTRAR is
// set.
var errNoRegistrar = errors.New("no registrar: pass --registrar URL or set " + RegistrarEnv)

// remoteFlags are the flags shared by the commands that talk to the
// registrar. They are persistent flags of each command group.
type remoteFlags struct {
	registrar  string
	output     string
	legacyAuth bool
	timeout    time.Duration
	retries    int
}

func (f *remoteFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.registrar, "registrar", "", "registrar `URL`, e.g. https://registrar.example.org (default $"+RegistrarEnv+")")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text (aligned tables) or json")
	fl.BoolVar(&f.legacyAuth, "legacy-auth", false, "sign with the legacy X-Auth header instead of signed requests v2")
	fl.DurationVar(&f.timeout, "timeout", defaultTimeout, "give up after this long, retries included")
	fl.IntVar(&f.retries, "retries", client.DefaultMaxAttempts-1, "retries after a network error, 5xx or 429")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text\taligned tables", "json\tfor scripts"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// check validates the presentation flags.
func (f *remoteFlags) check() error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.retries < 0 {
		return fmt.Errorf("--retries %d: want 0 or more", f.retries)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	}
	return nil
}

// session is what a registrar command runs with: its context, client and
// output.
type session struct {
	env    Env
	flags  *remoteFlags
	client *client.Client
	out    *printer
}

// url returns the registrar URL from the flag or the environment, and
// where it came from.
func (f *remoteFlags) url(env Env) (u, source string, err error) {
	if u = strings.TrimSpace(f.registrar); u != "" {
		return u, "--registrar", nil
	}
	if u = strings.TrimSpace(env.Getenv(RegistrarEnv)); u != "" {
		return u, RegistrarEnv, nil
	}
	return "", "", errNoRegistrar
}

// open checks the flags, loads the identity when id is not nil (it is
// required then) and builds the client. The returned context carries the
// --timeout; call the cancel function when done.
func (f *remoteFlags) open(cmd *cobra.Command, env Env, id *identityFlags) (context.Context, context.CancelFunc, *session, error) {
	if err := f.check(); err != nil {
		return nil, nil, nil, err
	}
	u, source, err := f.url(env)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := []client.Option{
		client.WithUserAgent("gridctl"),
		client.WithRetry(client.RetryPolicy{MaxAttempts: f.retries + 1}),
	}
	if f.legacyAuth {
		opts = append(opts, client.WithAuthScheme(client.AuthLegacy))
	}
	if id != nil {
		kp, err := id.load(cmd, env)
		if err != nil {
			return nil, nil, nil, err
		}
		opts = append(opts, client.WithIdentity(kp, 0))
	}
	c, err := client.New(u, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return ctx, cancel, &session{env: env, flags: f, client: c, out: newPrinter(env, f.output)}, nil
}

// explain turns a client error into the one-line message gridctl prints.
// Each kind of failure gets its own plain wording; the original error stays
// reachable with errors.Is / errors.As.
func (s *session) explain(err error) error {
	if err == nil {
		return nil
	}
	origin := s.client.Origin()
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.Status == 429:
			return wrapMsg(err, "registrar is rate limiting: %s (429); try again later", ae.Message)
		case ae.Status >= 500:
			return wrapMsg(err, "registrar failed: %s (%d)", ae.Message, ae.Status)
		}
		return wrapMsg(err, "registrar refused: %s (%d)", ae.Message, ae.Status)
	case errors.Is(err, client.ErrUnreachable):
		return wrapMsg(err, "cannot reach registrar at %s: %s", origin, networkReason(err))
	case errors.Is(err, client.ErrNoAccount):
		return wrapMsg(err, "identity %s has no account on the registrar at %s: create it with 'gridctl account create' (or check --scheme and --path)", identityName(s.client), origin)
	case errors.Is(err, context.DeadlineExceeded):
		return wrapMsg(err, "registrar at %s did not answer within %s (--timeout)", origin, s.flags.timeout)
	case errors.Is(err, context.Canceled):
		return wrapMsg(err, "interrupted")
	case errors.Is(err, client.ErrBadResponse):
		return wrapMsg(err, "unexpected answer from registrar at %s: %s", origin, err)
	}
	return err
}

// identityName is the client's public key as an SS58 address, the form
// 'gridctl keys show' and wallets print.
func identityName(c *client.Client) string {
	if c.KeyPair() == nil {
		return "(none)"
	}
	return keys.SS58Encode(c.KeyPair().Public().Key, keys.GenericSS58Prefix)
}

// messageError is an error with its own wording that keeps the cause for
// errors.Is and errors.As.
type messageError struct {
	msg   string
	cause error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.cause }

// wrapMsg words cause as format.
func wrapMsg(cause error, format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), cause: cause}
}

// networkReason gives the short reason of a network failure: "connection
// refused", "no such host", "timed out", or the error text.
func networkReason(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host " + strconv.Quote(dns.Name)
		}
		return dns.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before an answer"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// printer writes command output as text tables or JSON.
type printer struct {
	w      io.Writer
	json   bool
	colour bool
}

func newPrinter(env Env, format string) *printer {
	return &printer{w: env.Stdout, json: format == "json", colour: colourWanted(env)}
}

// colourWanted is true when standard output is a terminal and NO_COLOR is
// not set: pipes, files and test buffers get plain text.
func colourWanted(env Env) bool {
	if env.Getenv(NoColorEnv) != "" || env.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := env.Stdout.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// JSON writes v as indented JSON.
func (p *printer) JSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ANSI styles. Every style code has the same length, and in colour mode
// every table cell gets one (stylePlain when unstyled), so tabwriter, which
// counts the escape bytes as width, still aligns the columns.
const (
	styleBold  = "\x1b[01m"
	styleGreen = "\x1b[32m"
	styleRed   = "\x1b[31m"
	stylePlain = "\x1b[00m"
	styleReset = "\x1b[0m"
)

// style wraps s in an ANSI style when colour is on.
func (p *printer) style(style, s string) string {
	if !p.colour || s == "" {
		return s
	}
	return style + s + styleReset
}

// yesNo renders a flag, green or red on a terminal.
func (p *printer) yesNo(b bool) string {
	if b {
		return p.style(styleGreen, "yes")
	}
	return p.style(styleRed, "no")
}

// table writes an aligned table: a bold header row then rows.
func (p *printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	cells := make([]string, len(header))
	for i, h := range header {
		cells[i] = p.style(styleBold, h)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
	for _, r := range rows {
		cells = cells[:0]
		for _, c := range r {
			if p.colour && !strings.HasPrefix(c, "\x1b[") {
				c = stylePlain + c + styleReset
			}
			cells = append(cells, c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fields writes "name: value" lines with the values aligned.
func (p *printer) fields(pairs [][2]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, kv := range pairs {
		fmt.Fprintf(tw, "%s\t%s\n", p.style(styleBold, kv[0]+":"), kv[1])
	}
	return tw.Flush()
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtTime renders a time in UTC to the second, "-" when zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// fmtAgo renders a past time as "3m ago" (to the second below a minute).
func fmtAgo(t time.Time, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// fmtSeconds renders a duration in seconds as "2d3h4m5s".
func fmtSeconds(secs uint64) string {
	d := time.Duration(min(secs, uint64(1<<63-1)/uint64(time.Second))) * time.Second
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		rest := ""
		if d > 0 {
			rest = strings.TrimSuffix(d.String(), "0m0s")
		}
		return fmt.Sprintf("%dd%s", days, rest)
	}
	return d.String()
}

// fmtBytes renders a byte count with a binary unit.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// parseIDs parses positional ids.
func parseIDs(what string, args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%s %q: want a positive whole number", what, a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ownerFlags are --twin and --mine of the list commands, and the identity
// --mine needs: only what belongs to one twin, given or yours.
type ownerFlags struct {
	id   identityFlags
	twin uint64
	mine bool
}

// register adds the identity flags, --twin and --mine; what is the listed
// objects ("farms").
func (f *ownerFlags) register(cmd *cobra.Command, what string) {
	f.id.register(cmd)
	cmd.Flags().Uint64Var(&f.twin, "twin", 0, "only "+what+" of this twin `ID`")
	cmd.Flags().BoolVar(&f.mine, "mine", false, "only "+what+" of your twin (needs your identity)")
}

// check refuses --mine with --twin.
func (f *ownerFlags) check() error {
	if f.mine && f.twin != 0 {
		return errors.New("give --mine or --twin, not both")
	}
	return nil
}

// identity is the identity to open the session with: only --mine needs one.
func (f *ownerFlags) identity() *identityFlags {
	return f.id.when(f.mine)
}

// twinID is the twin to list for: --twin, or with --mine the session's
// (asked of the registrar); 0 for every twin.
func (f *ownerFlags) twinID(ctx context.Context, s *session) (uint64, error) {
	if !f.mine {
		return f.twin, nil
	}
	twin, err := s.client.TwinID(ctx)
	if err != nil {
		return 0, s.explain(err)
	}
	return twin, nil
}

// newShowCommand completes cmd (its use and help) into a command that shows
// one object by the id it takes, as the show commands of farms, nodes,
// contracts and farm prices do: without identity, it fetches the object with
// get and prints it with show. what names the id in errors ("farm id").
func newShowCommand[T any](env Env, remote *remoteFlags, cmd *cobra.Command, what string,
	get func(*client.Client, context.Context, uint64) (T, error), show func(*session, T) error) *cobra.Command {
	cmd.Args = exactlyOneID(what)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ids, _ := parseIDs(what, args)
		ctx, cancel, s, err := remote.open(cmd, env, nil)
		if err != nil {
			return err
		}
		defer cancel()
		v, err := get(s.client, ctx, ids[0])
		if err != nil {
			return s.explain(err)
		}
		return show(s, v)
	}
	return cmd
}

// exactlyOneID is an Args validator for commands taking one id.
func exactlyOneID(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := exactArgs(1, "one "+what)(cmd, args); err != nil {
			return err
		}
		_, err := parseIDs(what, args)
		return err
	}
}
