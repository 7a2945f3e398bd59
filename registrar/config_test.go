package registrar

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil, envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.DB != "sqlite:registrar.db" || len(c.AdminTwins) != 0 || !c.LegacyAuth ||
		c.ReportInterval != 40*time.Minute || c.OnlineMultiple != 3 || c.UptimeRetention != 90*24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	if c.isAdmin(1) {
		t.Fatal("no admin by default")
	}
}

func TestConfigFlagsAndEnv(t *testing.T) {
	env := envOf(map[string]string{
		"REGISTRAR_LISTEN":           "127.0.0.1:9000",
		"REGISTRAR_DB":               "postgres://u:p@db/reg",
		"REGISTRAR_ADMIN_TWIN":       "7, 9,7",
		"REGISTRAR_LEGACY_AUTH":      "false",
		"REGISTRAR_UPTIME_RETENTION": "30d",
		"REGISTRAR_TRUSTED_PROXIES":  "10.0.0.0/8,192.0.2.1",
		"REGISTRAR_LOG_LEVEL":        "debug",
		"REGISTRAR_CORS_ORIGIN":      "none",
	})
	c, err := ParseConfig([]string{"--listen", ":7000", "--report-interval=20m", "--rate-ip", "0"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":7000" {
		t.Errorf("a flag must win over the environment: %s", c.Listen)
	}
	if c.DB != "postgres://u:p@db/reg" || len(c.AdminTwins) != 2 || c.AdminTwins[0] != 7 || c.AdminTwins[1] != 9 {
		t.Errorf("env: %+v", c)
	}
	if c.LegacyAuth || c.UptimeRetention != 30*24*time.Hour || c.ReportInterval != 20*time.Minute || c.RateIP != 0 {
		t.Errorf("values: %+v", c)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("trusted proxies: %v", c.TrustedProxies)
	}
	if c.CORSOrigin != "" {
		t.Errorf("cors-origin none: %q", c.CORSOrigin)
	}
	if c.LogLevel.String() != "DEBUG" {
		t.Errorf("log level %v", c.LogLevel)
	}
}

func TestConfigErrorsAreOneLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--admin-twin", "x"}, nil, "admin-twin"},
		{[]string{"--admin-twin", "0"}, nil, "admin-twin"},
		{nil, map[string]string{"REGISTRAR_ADMIN_TWIN": "abc"}, "REGISTRAR_ADMIN_TWIN"},
		{nil, map[string]string{"REGISTRAR_REPORT_INTERVAL": "soon"}, "REGISTRAR_REPORT_INTERVAL"},
		{[]string{"--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"--online-multiple", "1"}, nil, "online-multiple"},
		{[]string{"--log-format", "xml"}, nil, "log-format"},
		{[]string{"--max-body", "10"}, nil, "max-body"},
		{[]string{"stray"}, nil, "stray"},
		{[]string{"--db", "mysql://u:secret@h/db"}, nil, "--db"},
		{[]string{"--trusted-proxies", "10.0.0.0/99"}, nil, "trusted-proxies"},
		{[]string{"--listen", "nope"}, nil, "--listen"},
		{[]string{"--listen", "127.0.0.1:99999"}, nil, "--listen"},
		{nil, map[string]string{"REGISTRAR_LISTEN": "8080"}, "--listen"},
	} {
		_, err := ParseConfig(c.args, envOf(c.env), nil)
		if err == nil {
			t.Errorf("%v %v: accepted", c.args, c.env)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "secret") {
			t.Errorf("%v %v: error %q should be one line naming %s", c.args, c.env, msg, c.want)
		}
	}
}

func TestConfigHelpListsEveryFlagAndVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := ParseConfig([]string{"--help"}, envOf(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, s := range []string{"--listen", "REGISTRAR_LISTEN", "--db", "REGISTRAR_DB", "--admin-twin", "REGISTRAR_ADMIN_TWIN", "--uptime-retention", "default 90d"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, out.String())
		}
	}
}
