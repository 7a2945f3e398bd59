package guest

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	good := `{"modules":["/modules/virtio.ko"],"root_tag":"root","args":["sh","-c","true"],"env":["A=b"],
		"nics":[{"mac":"02:00:00:AA:bb:01","ip":"10.1.0.5/24","gateway":"10.1.0.1"}],
		"mounts":[{"kind":"virtiofs","tag":"share0","target":"/data"},{"kind":"disk","tag":"g4disk1","target":"/disk","read_only":true}],
		"hostname":"vm1","ssh_keys":["ssh-ed25519 AAAA x"],"status":"/dev/ttyS1","stop_grace_ms":5000}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.NICs[0].IP.String() != "10.1.0.5/24" || c.Mounts[1].Kind != Disk || !c.Mounts[1].ReadOnly || c.StopGraceMS != 5000 {
		t.Errorf("config %+v", c)
	}
	for _, tc := range []struct{ json, want string }{
		{`{`, "config:"},
		{`{"args":["x"]}`, "no root tag"},
		{`{"root_tag":"root"}`, "no entrypoint"},
		{`{"root_tag":"r","args":["x"],"env":["A"]}`, `"A" is not KEY=VALUE`},
		{`{"root_tag":"r","args":["x"],"working_dir":"tmp"}`, "not absolute"},
		{`{"root_tag":"r","args":["x"],"nics":[{"mac":"02:00:00:00:00"}]}`, "not 6 colon-separated bytes"},
		{`{"root_tag":"r","args":["x"],"nics":[{"mac":"02:00:00:00:00:01","ip":"10.1.0.5/24","gateway":"10.2.0.1"}]}`, "gateway 10.2.0.1 is not in"},
		{`{"root_tag":"r","args":["x"],"mounts":[{"kind":"nfs","tag":"a","target":"/a"}]}`, `kind "nfs"`},
		{`{"root_tag":"r","args":["x"],"mounts":[{"kind":"disk","tag":"a","target":"/"}]}`, "absolute target other than /"},
		{`{"root_tag":"r","args":["x"],"modules":["virtio.ko"]}`, "not an absolute path"},
		{`{"root_tag":"r","args":["x"],"hostname":"a b"}`, "hostname"},
		{`{"root_tag":"r","args":["x"],"ssh_keys":["a\nb"]}`, "spans lines"},
	} {
		if _, err := ParseConfig([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.json, err, tc.want)
		}
	}
}

func TestLookPathAndEnv(t *testing.T) {
	vars, path := env([]string{"A=1"})
	if path != DefaultPath || vars[0] != "PATH="+DefaultPath || vars[1] != "A=1" {
		t.Errorf("env %v, %s", vars, path)
	}
	if _, path := env([]string{"PATH=/opt/bin"}); path != "/opt/bin" {
		t.Errorf("PATH %s", path)
	}
	if p, err := lookPath("sh", "/nonexistent:/bin"); err != nil || p != "/bin/sh" {
		t.Errorf("lookPath sh = %q, %v", p, err)
	}
	if _, err := lookPath("no-such-program", "/bin"); err == nil || !strings.Contains(err.Error(), "no-such-program") {
		t.Errorf("lookPath of nothing: %v", err)
	}
	if p, err := lookPath("./x", ""); err != nil || p != "./x" {
		t.Errorf("a path is taken as is: %q, %v", p, err)
	}
}

// Whatever a config file holds, parsing it fails or yields a config whose
// MACs are canonical-able and whose mounts are of a known kind.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"root_tag":"root","args":["sh"],"nics":[{"mac":"02:00:00:00:00:01","ip":"10.0.0.2/24","gateway":"10.0.0.1"}]}`))
	f.Add([]byte(`{"root_tag":"root","args":["/bin/app"],"mounts":[{"kind":"disk","tag":"g4disk0","target":"/d"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if c.RootTag == "" || len(c.Args) == 0 {
			t.Fatalf("accepted %+v", c)
		}
		for _, n := range c.NICs {
			if _, err := parseMAC(n.MAC); err != nil {
				t.Fatalf("accepted MAC %q", n.MAC)
			}
		}
		for _, m := range c.Mounts {
			if m.Kind != Virtiofs && m.Kind != Disk || m.Target == "/" {
				t.Fatalf("accepted mount %+v", m)
			}
		}
	})
}
