package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Errors of a Redis that checks who its clients are (ACL users, see
// ACLRules). Both wrap Redis's own error, so its text is kept.
var (
	// ErrNotAllowed: Redis refused a command because the client's user may
	// not run it on that key (NOPERM): it tried to call, serve, publish or
	// read something its access does not list.
	ErrNotAllowed = errors.New("bus: not allowed by the bus's access rules")
	// ErrUnauthenticated: Redis wants credentials the client did not give
	// (NOAUTH), or refused the ones it gave (WRONGPASS).
	ErrUnauthenticated = errors.New("bus: not authenticated")
)

// Secret is a password; it prints as "REDACTED" (fmt, slog) so that
// logging Options does not leak it.
type Secret string

// String returns "REDACTED" (or "" when empty).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString returns what String does, for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// denied turns Redis's refusals into ErrNotAllowed or ErrUnauthenticated
// (naming user); other errors are returned as they are.
func denied(err error, user string) error {
	var re redis.Error
	if err == nil || !errors.As(err, &re) {
		return err
	}
	who := "the default user"
	if user != "" {
		who = fmt.Sprintf("user %q", user)
	}
	msg := re.Error()
	switch {
	case strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("%w (%s): %w", ErrNotAllowed, who, err)
	case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"):
		return fmt.Errorf("%w (%s): %w", ErrUnauthenticated, who, err)
	}
	return err
}

// Access is what one bus user may do: the objects it serves and calls
// and the streams it publishes on and reads. ACLRules turns it into Redis
// ACL rules.
type Access struct {
	// Serve lists the objects ("module/object@version") the user serves.
	Serve []string
	// Call lists the objects the user calls.
	Call []string
	// Publish lists the streams ("module/stream") the user publishes on
	// (and may read back).
	Publish []string
	// Read lists the streams the user subscribes to.
	Read []string
}

// ACLRules returns the Redis ACL rules (what follows "ACL SETUSER name" or
// "user name" in an ACL file, without the password and "on") that let a
// client opened with Options{Prefix: prefix, User: user} do what a allows
// and nothing else. Each right is a selector pairing commands with keys,
// so a caller of an object may push requests onto its queue (LPUSH) and
// withdraw them (LREM), but not take them (BRPOP) and pose as its server;
// a server takes from its own queues and replies to any caller; a user
// reads only its own reply list. See docs/bus.md, "Access control".
func ACLRules(prefix, user string, a Access) ([]string, error) {
	if err := checkName("user", user); err != nil {
		return nil, fmt.Errorf("bus: acl: %w", err)
	}
	if strings.ContainsAny(prefix, " \t\r\n()") {
		return nil, fmt.Errorf("bus: acl: prefix %q: white space and parentheses cannot go in ACL rules", prefix)
	}
	p := globEscape(prefix)
	k := keys{prefix: p}
	key := func(s string) string { return "~" + s }
	// Every user may run, on no key: the connection's handshake (go-redis
	// sends HELLO with the credentials; the refusal of its CLIENT SETINFO
	// is ignored), PING, and the transactions of pushReply.
	rules := []string{"resetkeys", "resetchannels", "-@all",
		"+hello", "+auth", "+ping", "+multi", "+exec", "+discard"}
	// The user's own reply list: read replies, push the wake-up of Close.
	rules = append(rules, selector([]string{key(p + "reply:" + user + ":*")}, "+brpop", "+lpush", "+pexpire"))
	if len(a.Serve) > 0 {
		control := key(p + "control:" + user + ":*")
		var queues []string
		for _, o := range a.Serve {
			obj, err := ParseObject(o)
			if err != nil {
				return nil, fmt.Errorf("bus: acl: serve: %w", err)
			}
			queues = append(queues, key(k.queue(obj)))
		}
		// BRPOP takes the queues and the control list in one command, so
		// they are in one selector; RPUSH puts back a request taken during
		// a shutdown, DEL drops the control list.
		rules = append(rules, selector(append(queues, control), "+brpop", "+rpush", "+del"))
		rules = append(rules, selector([]string{key(p + "reply:*"), control}, "+lpush", "+pexpire"))
	}
	if len(a.Call) > 0 {
		var queues []string
		for _, o := range a.Call {
			obj, err := ParseObject(o)
			if err != nil {
				return nil, fmt.Errorf("bus: acl: call: %w", err)
			}
			queues = append(queues, key(k.queue(obj)))
		}
		rules = append(rules, selector(queues, "+lpush", "+lrem"))
	}
	streams := func(names []string, cmds ...string) error {
		if len(names) == 0 {
			return nil
		}
		var ks []string
		for _, n := range names {
			s, err := ParseStream(n)
			if err != nil {
				return fmt.Errorf("bus: acl: %w", err)
			}
			ks = append(ks, key(k.stream(s)))
		}
		rules = append(rules, selector(ks, cmds...))
		return nil
	}
	if err := streams(a.Publish, "+xadd", "+xread", "+xrange", "+xrevrange"); err != nil {
		return nil, err
	}
	if err := streams(a.Read, "+xread", "+xrange", "+xrevrange"); err != nil {
		return nil, err
	}
	return rules, nil
}

// selector is one ACL selector: the commands, on the keys.
func selector(keys []string, cmds ...string) string {
	return "(" + strings.Join(append(append([]string(nil), keys...), cmds...), " ") + ")"
}

// globEscape escapes the characters Redis key patterns treat specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
