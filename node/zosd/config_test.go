package zosd

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseNode(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("zosd", flag.ContinueOnError)
	cfg.flagSet(fs)
	if err := parse(fs, args, func(k string) string { return env[k] }, nil, ""); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate("node")
}

// TestDefaults: the real schedule is the seed's, whatever the tests use.
func TestDefaults(t *testing.T) {
	cfg, err := parseNode(t, []string{"--registrar", "http://r", "--farm", "3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AccountCheck != 30*time.Minute || cfg.Update != 24*time.Hour || cfg.Uptime != 40*time.Minute {
		t.Errorf("schedule: %v %v %v", cfg.AccountCheck, cfg.Update, cfg.Uptime)
	}
	if cfg.AddressPoll != 10*time.Second || cfg.DataDir != DefaultDataDir || cfg.Redis != "" || cfg.BusPrefix != "bus:" ||
		cfg.GeoIPURL != DefaultGeoIPURL || cfg.MinFreeDisk != 100<<20 || cfg.InProcess || cfg.AuthScheme != "v2" ||
		cfg.APIListen != ":2021" || cfg.APIURL != "" {
		t.Errorf("defaults: %+v", cfg)
	}
}

// TestEnvAndFlags: every flag has a ZOSD_ variable; a flag wins.
func TestEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"ZOSD_REGISTRAR":       "http://from-env",
		"ZOSD_FARM":            "9",
		"ZOSD_DATA_DISK":       "/mnt/a,/mnt/b",
		"ZOSD_UPTIME_INTERVAL": "2s",
		"ZOSD_UPDATE_INTERVAL": "1d",
		"ZOSD_MIN_FREE_DISK":   "1GiB",
		"ZOSD_GEOIP_URL":       "none",
		"ZOSD_IN_PROCESS":      "true",
	}
	cfg, err := parseNode(t, []string{"--farm", "4", "--data-disk", "/mnt/c", "--data", "rel"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Registrar != "http://from-env" || cfg.Farm != 4 || cfg.Uptime != 2*time.Second || cfg.Update != 24*time.Hour ||
		cfg.MinFreeDisk != 1<<30 || cfg.GeoIPURL != "" || !cfg.InProcess {
		t.Errorf("config: %+v", cfg)
	}
	if strings.Join(cfg.DataDisks, ",") != "/mnt/c" {
		t.Errorf("a flag must win over its variable: %v", cfg.DataDisks)
	}
	if !strings.HasPrefix(cfg.DataDir, "/") {
		t.Errorf("data dir not made absolute: %s", cfg.DataDir)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "--registrar is required"},
		{[]string{"--registrar", "ftp://x"}, nil, "want an http or https URL"},
		{[]string{"--registrar", "http://r"}, nil, "--farm is required"},
		{[]string{"--registrar", "http://r", "--farm", "x"}, nil, "want a positive integer"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--uptime-interval", "0s"}, nil, "--uptime-interval must be positive"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--latitude", "100"}, nil, "fallback location"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--auth", "x"}, nil, "--auth"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--zos-version", "4.1"}, nil, `--zos-version: "4.1" is not a version like v4.1.2`},
		{[]string{"--registrar", "http://r", "--farm", "1", "--interface", "../etc"}, nil, "not a network interface name"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--data", "/" + strings.Repeat("d", 120)}, nil, "longer than a unix socket path"},
		{[]string{"--registrar", "http://r", "--farm", "1", "extra"}, nil, "unexpected argument"},
		{[]string{"--registrar", "http://r"}, map[string]string{"ZOSD_FARM": "-1"}, "ZOSD_FARM"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--hub", "http://h"}, nil, "--upgrade-publisher-key is required with --hub"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--hub", "h:1"}, nil, "--hub \"h:1\": want an http or https URL"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--hub", "http://h", "--upgrade-publisher-key", "0x12"}, nil, "--upgrade-publisher-key: "},
		{[]string{"--registrar", "http://r", "--farm", "1", "--hub", "http://h", "--upgrade-publisher-key", strings.Repeat("ab", 32), "--upgrade-repo", "a/b"}, nil, "--upgrade-repo: "},
		{[]string{"--registrar", "http://r", "--farm", "1", "--upgrade-interval", "0s"}, nil, "--upgrade-interval must be positive"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--upgrade-jitter", "-1s"}, nil, "must not be negative"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--api-listen", "2021"}, nil, "--api-listen \"2021\": want host:port"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--api-listen", ":http"}, nil, "--api-listen"},
		{[]string{"--registrar", "http://r", "--farm", "1", "--api-url", "http://user:pw@n.example/api/v1/rpc"}, nil, "--api-url: "},
		{[]string{"--registrar", "http://r", "--farm", "1", "--api-url", "n.example:2021"}, nil, "--api-url: "},
	} {
		_, err := parseNode(t, tc.args, tc.env)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want a usage error with %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestChildArgsRoundTrip: the flags zosd passes to its modules give them
// the same configuration.
func TestChildArgsRoundTrip(t *testing.T) {
	cfg, err := parseNode(t, []string{"--registrar", "http://r", "--farm", "4", "--data-disk", "/a,/b", "--uptime-interval", "3s",
		"--city", "Ghent", "--min-free-disk", "5MiB", "--log-level", "debug", "--api-url", "https://n.example/api/v1/rpc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cfg2 := DefaultConfig()
	cfg2.flagSet(fs)
	src := flag.NewFlagSet("y", flag.ContinueOnError)
	cfg.flagSet(src)
	if err := parse(fs, args(src), nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := cfg2.validate(ModuleLight); err != nil {
		t.Fatal(err)
	}
	if cfg2.Registrar != cfg.Registrar || cfg2.Farm != 4 || strings.Join(cfg2.DataDisks, ",") != "/a,/b" || cfg2.Uptime != 3*time.Second ||
		cfg2.Fallback.City != "Ghent" || cfg2.MinFreeDisk != 5<<20 || cfg2.LogLevel != cfg.LogLevel || cfg2.DataDir != cfg.DataDir ||
		cfg2.APIURL != "https://n.example/api/v1/rpc" || cfg2.lightConfig().APIURL != cfg2.APIURL {
		t.Errorf("round trip:\n%+v\n%+v", cfg, cfg2)
	}
}

func TestMainErrors(t *testing.T) {
	ctx := context.Background()
	// A run file left by a zosd that was killed: its pid has ended.
	crashed := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := writeRunFile(filepath.Join(crashed, "zosd.run"), RunInfo{PID: gone.Process.Pid, DataDir: crashed,
		Redis: "unix://" + filepath.Join(crashed, "redis.sock"), BusPrefix: DefaultBusPrefix}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, ExitUsage, "zosd: --registrar is required"},
		{[]string{"run"}, ExitUsage, "name a module"},
		{[]string{"run", "kvmd"}, ExitUsage, `unknown module "kvmd"`},
		{[]string{"status", "--data", t.TempDir()}, ExitError, "zosd is not running"},
		{[]string{"status", "--data", crashed}, ExitError, "zosd is not running on " + crashed + " (its run file names pid"},
		{[]string{"status", "-o", "yaml"}, ExitUsage, "want text or json"},
		{[]string{"run", "powerd", "--data", t.TempDir()}, ExitUsage, "--redis is required"},
	} {
		var out, errb bytes.Buffer
		code := Main(ctx, tc.args, Env{Stdout: &out, Stderr: &errb})
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q on one line", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	var out bytes.Buffer
	if code := Main(ctx, []string{"--help"}, Env{Stdout: &out}); code != 0 || !strings.Contains(out.String(), "ZOSD_FARM") || !strings.Contains(out.String(), "--uptime-interval") {
		t.Errorf("--help: %d %s", code, out.String())
	}
	out.Reset()
	if code := Main(ctx, []string{"version"}, Env{Stdout: &out}); code != 0 || !strings.HasPrefix(out.String(), "zosd ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}
