package bootstrap

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestMainUsage: a bad command line is one line on stderr and exit 2,
// before anything starts.
func TestMainUsage(t *testing.T) {
	env := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "bootstrap: flag provided but not defined: -bogus"},
		{[]string{"--data", t.TempDir(), "--start-deadline", "0"}, "bootstrap: --start-deadline must be positive"},
		{[]string{"--data", t.TempDir(), "--heartbeat-deadline", "-1s"}, "bootstrap: --heartbeat-deadline must be positive"},
		{[]string{"--data", t.TempDir(), "--restart-max", "0s"}, "bootstrap: --restart-max must be positive"},
		{[]string{"revert"}, "bootstrap revert: --self-dir is required (see bootstrap --help)"},
	} {
		var stderr bytes.Buffer
		code := Main(context.Background(), tc.args, env, &stderr)
		if code != ExitUsage || !strings.HasPrefix(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q on one line", tc.args, code, stderr.String(), ExitUsage, tc.want)
		}
	}
}
